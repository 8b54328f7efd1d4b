import { TRPCClientError, type Operation, type TRPCLink } from "@trpc/client";
import { observable } from "@trpc/server/observable";
import type { AppRouter } from "./router-types.js";

/**
 * At most this many calls in flight on the socket. tRPC's WebSocket client sends every call
 * waiting for the socket in one message, and the server refuses a message of more calls than
 * its --max-batch-size (default 64; the HTTP batches hold 32 too): bounding the calls in
 * flight bounds every message. The rest go over HTTP meanwhile.
 */
export const SOCKET_CALLS = 32;

/**
 * At most this many bytes of calls in flight on the socket (so in one message). The server
 * closes a socket (1009) on a message over its --max-body-bytes, failing every call in
 * flight there; its smallest setting is 64 KiB, so no message of ours reaches it. A larger
 * call goes over HTTP alone, where an oversized one is refused by itself (413).
 */
export const SOCKET_BYTES = 60 * 1024;

/** What tRPC's envelope adds to a call's input in a message (id, method, path), at most. */
const ENVELOPE_BYTES = 160;

export interface CallsLinkOptions {
  /** The WebSocket link, used while `socketReady()` holds. */
  socket: TRPCLink<AppRouter>;
  /** Calls carrying a `traceparent` context: over HTTP alone, with the header. */
  traced: TRPCLink<AppRouter>;
  /** Everything else: over HTTP, batched. */
  http: TRPCLink<AppRouter>;
  /** True while the socket is open and its token is not about to expire. */
  socketReady: () => boolean;
}

/**
 * Which way each query or mutation goes. Over the socket while it is open, within a budget of
 * calls and bytes in flight; over HTTP otherwise, with the errors HTTP has always given: a
 * call made while the socket is down or reconnecting fails (or succeeds) as fast as HTTP
 * does, never waiting for the socket. A call in flight when the socket is lost fails with it
 * (no `data.code`, as a failed fetch): whether the server ran it is unknown, so what is worth
 * resending carries an idempotency key (`queue.add`'s messageId, the agent's commandIds).
 */
export function callsLink({ socket, traced, http, socketReady }: CallsLinkOptions): TRPCLink<AppRouter> {
  let calls = 0;
  let bytes = 0;
  return (runtime) => {
    const links = { socket: socket(runtime), traced: traced(runtime), http: http(runtime) };
    return ({ op }) =>
      observable((observer) => {
        const cost = typeof op.context.traceparent === "string" ? null : socketCost(op, bytes, socketReady() && calls < SOCKET_CALLS);
        if (cost === null) {
          const link = typeof op.context.traceparent === "string" ? links.traced : links.http;
          return link({ op, next: noNext }).subscribe(observer);
        }
        calls++;
        bytes += cost;
        let held = true;
        const release = () => {
          if (!held) return;
          held = false;
          calls--;
          bytes -= cost;
        };
        const subscription = links.socket({ op, next: noNext }).subscribe({
          next: (value) => {
            release();
            observer.next(value);
          },
          error: (error) => {
            release();
            observer.error(error.data === undefined ? answerLost(error) : error);
          },
          complete: () => {
            release();
            observer.complete();
          },
        });
        return () => {
          release();
          subscription.unsubscribe();
        };
      });
  };
}

/** The bytes `op` takes in a socket message, or null when it does not fit what the socket may hold now. */
function socketCost(op: Operation, inFlight: number, open: boolean): number | null {
  if (!open) return null;
  const room = SOCKET_BYTES - inFlight - ENVELOPE_BYTES;
  const json = JSON.stringify(op.input ?? null) ?? "null";
  // At least a UTF-8 byte per character: a long input is sent over HTTP without encoding it here.
  if (json.length > room) return null;
  const size = utf8.encode(json).length;
  return size <= room ? size + ENVELOPE_BYTES : null;
}

const utf8 = new TextEncoder();

/**
 * A socket call that failed without an answer from the server (the socket closed or failed
 * under it): tRPC says "Unknown error" or "WebSocket closed"; this says what it means. Still
 * a TRPCClientError without `data`, as a failed fetch is, so callers treat it alike.
 */
function answerLost(error: TRPCClientError<AppRouter>): TRPCClientError<AppRouter> {
  return new TRPCClientError("the connection to the server was lost before its answer: the call may have run; send it again with the same key", {
    cause: error,
  });
}

const noNext = (): never => {
  throw new Error("a terminating link has no next link");
};
