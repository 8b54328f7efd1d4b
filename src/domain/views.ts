import { orderedItems, type QueueItemState, type ThreadState } from "./state.js";

/** The fields of the public QueueItem (docs/contract.md): an item's state minus the drain's bookkeeping. */
export const QUEUE_ITEM_VIEW_FIELDS = [
  "queueItemId", "messageId", "text", "attachments", "options", "status", "failureReason", "position", "attempts", "createdAt", "updatedAt",
] as const satisfies readonly (keyof QueueItemState)[];

/** The public QueueItem, as clients see it. */
export type QueueItemView = Pick<QueueItemState, (typeof QUEUE_ITEM_VIEW_FIELDS)[number]>;

/** The public ThreadSnapshot (docs/contract.md). */
export interface ThreadSnapshot {
  threadId: string;
  title: string;
  version: number;
  archived: boolean;
  session: Pick<ThreadState["session"], "status" | "activeTurnId" | "error" | "runtimeSessionId">;
  queue: { paused: boolean; pauseReason: ThreadState["pauseReason"]; items: QueueItemView[] };
}

export const itemView = (i: QueueItemState): QueueItemView =>
  Object.fromEntries(QUEUE_ITEM_VIEW_FIELDS.map((field) => [field, i[field]])) as QueueItemView;

export const snapshotOf = (s: ThreadState): ThreadSnapshot => ({
  threadId: s.threadId,
  title: s.title,
  version: s.version,
  archived: s.archived,
  session: { status: s.session.status, activeTurnId: s.session.activeTurnId, error: s.session.error, runtimeSessionId: s.session.runtimeSessionId },
  queue: { paused: s.paused, pauseReason: s.pauseReason, items: orderedItems(s).map(itemView) },
});
