import { TRPCError } from "@trpc/server";
import type { TokenConnections } from "../token-connections.js";
import type { SocketCalls } from "./socket-calls.js";

/** What one tRPC WebSocket may hold, and whether its calls are refused outright. */
export interface SocketBudget {
  /** Subscriptions open on the socket now. */
  subscriptions: number;
  readonly maxSubscriptions: number;
  /** Every call on the socket fails with this (its token has too many sockets), or null. */
  refusal: TRPCError | null;
  /** The calls in flight on every socket of the server (shared), which a graceful stop waits for. */
  readonly calls: SocketCalls;
}

/** The refusal of a connection over the token's budget (TokenConnections). */
export const tooManyConnections = (connections: TokenConnections) =>
  new TRPCError({ code: "TOO_MANY_REQUESTS", message: connections.refusalMessage() });

/** The refusal of one subscription too many on a socket. */
export const tooManySubscriptions = (max: number) =>
  new TRPCError({ code: "TOO_MANY_REQUESTS", message: `at most ${max} subscriptions per connection: stop one first` });
