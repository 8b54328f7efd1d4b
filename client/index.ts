import { createTransport } from "./transport.js";
import { ThreadQueue, type Presence } from "./queue.js";
import { TokenSource, type TokenOption } from "./token.js";

export interface TurnqueueClientOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:4780. */
  url: string;
  /**
   * A user (or admin) token (`turnqueue token --workspace W --role user`), or a function
   * returning a fresh one: called again before the one held expires, and every connection
   * the server closes at expiry reconnects with the new one.
   */
  token: TokenOption;
  /**
   * How queries and mutations travel: `socket` (default) over one WebSocket the client opens
   * at once and keeps, reconnecting by itself, until `close()` (so close it when done); HTTP
   * carries calls while it is down and calls too large for it. `http`: each call over HTTP,
   * for a client that makes a call or two and is gone (the `turnqueue` CLI).
   */
  calls?: "socket" | "http";
}

export interface OpenQueueOptions {
  /** How this device appears to the others looking at the thread. */
  presence?: Partial<Presence>;
}

/**
 * The user side of Turnqueue: every tRPC procedure, typed from the server's router, plus
 * live, collaborative queues backed by each thread's Yjs document.
 */
export function createTurnqueueClient(options: TurnqueueClientOptions) {
  // One holder for every connection, so the callback is asked once per renewal.
  const token = new TokenSource(options.token);
  const transport = createTransport({ url: options.url, token, calls: options.calls ?? "socket" });
  const queues = new Set<ThreadQueue>();
  return {
    thread: transport.thread,
    queue: transport.queue,
    openThreadQueue(threadId: string, open: OpenQueueOptions = {}): ThreadQueue {
      const queue: ThreadQueue = new ThreadQueue({
        url: options.url,
        token,
        threadId,
        trpc: transport,
        presence: open.presence,
        onClose: () => queues.delete(queue),
      });
      queues.add(queue);
      return queue;
    },
    /** Closes every open queue and the API connection. */
    async close(): Promise<void> {
      for (const queue of queues) queue.close();
      await transport.close();
    },
  };
}

import { isFrozen as domainIsFrozen } from "../src/domain/state.js";
import type { ItemStatus } from "./queue.js";

export type TurnqueueClient = ReturnType<typeof createTurnqueueClient>;
export { ThreadQueue, applyTextChange } from "./queue.js";
export type { TokenOption } from "./token.js";
/**
 * Whether an item is frozen (being sent): it can no longer be edited, moved or removed. The
 * domain's rule, typed here by the SDK's own item status so the declarations ship alone.
 */
export const isFrozen = (item: { status: ItemStatus }): boolean => domainIsFrozen(item);
export type {
  AddOptions, Added, ConnectionStatus, ItemStatus, PauseReason, Peer, Presence, QueueEntry, QueueMeta, SessionStatus,
} from "./queue.js";
