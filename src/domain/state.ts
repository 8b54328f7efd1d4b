import type { List as PersistentList, Map as PersistentMap, Set as PersistentSet } from "immutable";
import type { Author, Delivery, PauseReason, QueueMode, SessionStatus } from "./primitives.js";
import { compareOrder } from "./ordering.js";
import type { QueueItemState } from "./queue-item.js";

/**
 * What became of every message ever queued: makes `queue.add` idempotent by messageId, and
 * answers `queue.status` (a queued one's details are its item's; a sent one's turn outcome
 * is the Turn projection's, so the state does not grow with every turn's outcome).
 */
export type KnownMessage = { queueItemId: string; textHash: string } & (
  | { fate: "queued" | "removed" }
  /** `turnId`: the turn that took it. */
  | { fate: "sent"; turnId: string }
);

export interface ThreadState {
  threadId: string;
  exists: boolean;
  workspaceId: string;
  title: string;
  version: number;
  archived: boolean;
  deleted: boolean;
  session: {
    status: SessionStatus;
    activeTurnId: string | null;
    error: string | null;
    /** The agent's own session/thread id, sent back on every dispatch so a restarted runtime resumes it. */
    runtimeSessionId: string | null;
    /** The active turn the user asked to stop (null once it ended). */
    interruptRequested: string | null;
  };
  paused: boolean;
  pauseReason: PauseReason | null;
  /** When the hold ends by itself (a rate limit's reset); null for every other hold. */
  resumeAt: string | null;
  mode: QueueMode;
  /**
   * Persistent collections (immutable-js): evolve returns a new state sharing all but the
   * changed path with the old one, so a command costs the same in a thread of ten items and
   * of ten thousand, and the engine keeps the state before a chain to diff the projections.
   */
  items: PersistentMap<string, QueueItemState>;
  messages: PersistentMap<string, KnownMessage>;
  /** Every item id ever queued here: an id names one message for ever. */
  itemIds: PersistentSet<string>;
  /** Ids of the items being sent (at most one while the rules hold), so no check walks the queue for it. */
  sending: PersistentSet<string>;
  /**
   * The ids of the waiting items in the order they go (`compareGoing`); the first is the
   * one that goes next. Checked on every command and every wake of the drain, so evolve
   * keeps it in order (a binary search, then a persistent list's insert or removal: an item
   * joining last or leaving first copies nothing) instead of each check walking the queue:
   * a claim in a thread of ten thousand items costs microseconds, not a walk of milliseconds.
   */
  waiting: PersistentList<string>;
  /** The highest position key ever given in the thread: a new item goes past it without a walk over the queue. */
  lastPosition: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A freshly queued item, as `queue.item-added` creates it. */
export const newQueueItem = (
  added: Pick<QueueItemState, "queueItemId" | "messageId" | "text" | "attachments" | "options" | "position"> & {
    delivery: Delivery;
    author: Author | null;
  },
  at: string,
): QueueItemState => ({
  queueItemId: added.queueItemId,
  messageId: added.messageId,
  text: added.text,
  attachments: added.attachments,
  options: added.options,
  delivery: added.delivery,
  author: added.author,
  status: "pending",
  failureReason: null,
  position: added.position,
  attempts: 0,
  notBefore: null,
  dispatchId: null,
  dispatchKind: null,
  editLocks: {},
  typingRevokedAt: 0,
  createdAt: at,
  updatedAt: at,
});

export const orderedItems = (state: ThreadState): QueueItemState[] =>
  [...state.items.values()].sort(compareOrder);

/**
 * A sending item is frozen: its text, position and membership can no longer change (the
 * agent may already be reading it). The decider refuses such changes (ITEM_SENDING), the
 * document bridge undoes them, and the SDK and the board show the item read-only.
 */
export const isFrozen = (item: Pick<QueueItemState, "status">): boolean => item.status === "sending";

export const sendingItem = (state: ThreadState): QueueItemState | undefined => {
  const id = state.sending.first();
  return id === undefined ? undefined : state.items.get(id);
};

/** cyrb53: a small, pure, stable hash; enough to tell "same text" for idempotent enqueue. */
export function textHash(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return `${text.length}:${(4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36)}`;
}
