import { createHash } from "node:crypto";
import { TRPCError } from "@trpc/server";

/** What one tRPC WebSocket may hold, and whether its calls are refused outright. */
export interface SocketBudget {
  /** Subscriptions open on the socket now. */
  subscriptions: number;
  readonly maxSubscriptions: number;
  /** Every call on the socket fails with this (its token has too many sockets), or null. */
  refusal: TRPCError | null;
}

/**
 * Per token, the tRPC WebSockets using it on this instance. Keyed by a hash, so no token is
 * kept in memory; a slot is freed when its socket closes.
 */
export class TokenConnections {
  private readonly open = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Takes a slot for `token` until `closed` aborts; false when the token has `max` already. */
  take(token: string, closed: AbortSignal): boolean {
    if (closed.aborted) return true;
    const key = createHash("sha256").update(token).digest("base64url");
    const n = this.open.get(key) ?? 0;
    if (n >= this.max) return false;
    this.open.set(key, n + 1);
    closed.addEventListener(
      "abort",
      () => {
        const left = (this.open.get(key) ?? 1) - 1;
        if (left > 0) this.open.set(key, left);
        else this.open.delete(key);
      },
      { once: true },
    );
    return true;
  }

  refusal(): TRPCError {
    return new TRPCError({
      code: "TOO_MANY_REQUESTS",
      message: `this token already has ${this.max} connections open on this server: close one, or use another token`,
    });
  }
}

/** The refusal of one subscription too many on a socket. */
export const tooManySubscriptions = (max: number) =>
  new TRPCError({ code: "TOO_MANY_REQUESTS", message: `at most ${max} subscriptions per connection: stop one first` });
