import type { PauseReason, SessionStatus } from "./primitives.js";
import { compareOrder } from "./ordering.js";
import type { QueueItemState } from "./queue-item.js";

/** What became of every message ever queued: makes `queue.add` idempotent by messageId. */
export interface KnownMessage {
  queueItemId: string;
  textHash: string;
  fate: "queued" | "sent" | "removed";
}

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
  items: Readonly<Record<string, QueueItemState>>;
  messages: Readonly<Record<string, KnownMessage>>;
  createdAt: string;
  updatedAt: string;
}

/** A freshly queued item, as `queue.item-added` creates it. */
export const newQueueItem = (
  added: Pick<QueueItemState, "queueItemId" | "messageId" | "text" | "attachments" | "options" | "position">,
  at: string,
): QueueItemState => ({
  queueItemId: added.queueItemId,
  messageId: added.messageId,
  text: added.text,
  attachments: added.attachments,
  options: added.options,
  status: "pending",
  failureReason: null,
  position: added.position,
  attempts: 0,
  notBefore: null,
  dispatchId: null,
  dispatchKind: null,
  editLocks: {},
  createdAt: at,
  updatedAt: at,
});

export const initialState = (threadId: string): ThreadState => ({
  threadId,
  exists: false,
  workspaceId: "",
  title: "",
  version: 0,
  archived: false,
  deleted: false,
  session: { status: "unknown", activeTurnId: null, error: null, runtimeSessionId: null, interruptRequested: null },
  paused: false,
  pauseReason: null,
  items: {},
  messages: {},
  createdAt: "",
  updatedAt: "",
});

export const orderedItems = (state: ThreadState): QueueItemState[] =>
  Object.values(state.items).sort(compareOrder);

/**
 * The first (or, with `last`, the final) item in queue order among those `keep` accepts.
 * A linear scan: enqueue and every drain check need only an end of the queue, not a sort.
 */
export function endOfQueue(
  state: ThreadState,
  end: "first" | "last",
  keep: (item: QueueItemState) => boolean = () => true,
): QueueItemState | undefined {
  const sign = end === "first" ? 1 : -1;
  let best: QueueItemState | undefined;
  for (const item of Object.values(state.items)) {
    if (keep(item) && (!best || sign * compareOrder(item, best) < 0)) best = item;
  }
  return best;
}

/**
 * A sending item is frozen: its text, position and membership can no longer change (the
 * agent may already be reading it). The decider refuses such changes (ITEM_SENDING), the
 * document bridge undoes them, and the SDK and the board show the item read-only.
 */
export const isFrozen = (item: Pick<QueueItemState, "status">): boolean => item.status === "sending";

export const sendingItem = (state: ThreadState): QueueItemState | undefined => Object.values(state.items).find(isFrozen);

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
