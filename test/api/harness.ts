import { createTRPCClient, createWSClient, httpLink, splitLink, TRPCClientError, wsLink } from "@trpc/client";
import WebSocket from "ws";
import type { AppRouter } from "../../src/api/router.js";
import type { ThreadEvent } from "../../src/api/thread-events.js";
import type { TestServer } from "../support/server.js";

/** Every suite runs on the embedded PGlite, and on PostgreSQL too when TEST_DATABASE_URL is set. */
export { databases } from "../support/database.js";

export type Client = ReturnType<typeof connect>;

/**
 * A real client of the real server, as an SDK user would build one: queries and mutations
 * over HTTP with a Bearer token, subscriptions over WebSocket with `connectionParams.token`.
 */
export function connect(server: Pick<TestServer, "url" | "wsUrl">, token: string | null) {
  const ws = createWSClient({
    url: `${server.wsUrl}/trpc`,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: token ? { token } : {},
    retryDelayMs: () => 50,
  });
  const trpc = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === "subscription",
        true: wsLink({ client: ws }),
        false: httpLink({ url: `${server.url}/trpc`, headers: token ? { authorization: `Bearer ${token}` } : {} }),
      }),
    ],
  });
  return { thread: trpc.thread, queue: trpc.queue, agent: trpc.agent, close: () => ws.close() };
}

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
