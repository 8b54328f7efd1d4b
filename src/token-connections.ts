import { tokenKey } from "./auth/tokens.js";

/**
 * Per token, the long-lived connections using it on this instance, whatever door they came
 * through (tRPC WebSockets and server-sent event streams, `/yjs` sockets): one budget, so a
 * token cannot multiply its connections by spreading them over doors. Keyed by `tokenKey`.
 */
export class TokenConnections {
  private readonly open = new Map<string, number>();

  constructor(readonly max: number) {}

  /**
   * Takes a slot for `token`; the function returned frees it (once, however often it is
   * called). Null when the token holds `max` already: the door refuses the connection.
   */
  take(token: string): (() => void) | null {
    const key = tokenKey(token);
    const n = this.open.get(key) ?? 0;
    if (n >= this.max) return null;
    this.open.set(key, n + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = (this.open.get(key) ?? 1) - 1;
      if (left > 0) this.open.set(key, left);
      else this.open.delete(key);
    };
  }

  /** What a refused connection is told (never the token). */
  refusalMessage(): string {
    return `this token already has ${this.max} connections open on this server: close one, or use another token`;
  }
}
