import { TRPCClientError } from "@trpc/client";
import { createTransport, type Transport } from "../../client/transport.js";
import type { AppRouter } from "../../client/router-types.js";
import type { ThreadEvent } from "../../src/api/thread-events.js";

/**
 * tRPC clients for tests, built by the SDK's transport (client/transport.ts) as a short-lived
 * client is: queries and mutations over HTTP with a Bearer token (so a test sees each call at
 * the HTTP door: its status, its count), subscriptions over the WebSocket with
 * `connectionParams.token`. Calls over the socket, the long-lived SDK client's way, are
 * tested with that client itself (test/client/socket-calls.test.ts). A test that must send
 * what no client would (no token, bad frames, malformed input) speaks raw tRPC through
 * ./trpc-raw.ts instead.
 */
export type Client = Transport;

/** A client of a running server (a TestServer, or any `url`) with `token`. */
export const connect = (server: { url: string }, token: string): Client => createTransport({ url: server.url, token, calls: "http" });

/** The tRPC error code of a failed call (UNAUTHORIZED, CONFLICT, …), undefined for anything else. */
export const codeOf = (error: unknown): string | undefined =>
  error instanceof TRPCClientError ? (error.data as { code?: string } | undefined)?.code : undefined;

/** The error a call must fail with (the test fails if it succeeds). */
export async function failure(call: Promise<unknown>): Promise<TRPCClientError<AppRouter>> {
  try {
    await call;
  } catch (error) {
    if (error instanceof TRPCClientError) return error as TRPCClientError<AppRouter>;
    throw error;
  }
  throw new Error("expected the call to fail, and it succeeded");
}

/** A live `thread.events` subscription that records what it receives. */
export function watchEvents(client: Client, input: { threadId: string; lastEventId?: string | null }) {
  const received: { id: string; event: ThreadEvent }[] = [];
  const waiters = new Set<() => void>();
  let error: TRPCClientError<AppRouter> | null = null;
  let started = false;
  let completed = false;
  const wake = () => waiters.forEach((w) => w());
  const subscription = client.thread.events.subscribe(input, {
    onStarted: () => {
      started = true;
      wake();
    },
    onData: ({ id, data }) => {
      received.push({ id, event: data });
      wake();
    },
    onComplete: () => {
      completed = true;
      wake();
    },
    onError: (e) => {
      error = e as TRPCClientError<AppRouter>;
      wake();
    },
  });
  /** Resolves once `done()` holds; rejects if the subscription fails first. */
  const until = (done: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (error) reject(error);
        else if (done()) resolve();
        else return;
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return {
    received,
    types: () => received.map((r) => r.event.type),
    started: () => until(() => started),
    count: (n: number) => until(() => received.length >= n),
    /** The server ended the stream. */
    completed: () => until(() => completed),
    failed: () =>
      new Promise<TRPCClientError<AppRouter>>((resolve, reject) => {
        const check = () => {
          if (error) resolve(error);
          else if (received.length > 0) reject(new Error(`expected an error, received ${received[0].event.type}`));
        };
        waiters.add(check);
        check();
      }),
    stop: () => subscription.unsubscribe(),
  };
}

export const uid = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
