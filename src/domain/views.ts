import { orderedItems, type QueueItemState, type ThreadState } from "./state.js";

/** The public QueueItem (docs/contract.md), as clients see it. */
export type QueueItemView = Pick<
  QueueItemState,
  "queueItemId" | "messageId" | "text" | "attachments" | "options" | "status" | "failureReason" | "position" | "attempts" | "createdAt" | "updatedAt"
>;

/** The public ThreadSnapshot (docs/contract.md). */
export interface ThreadSnapshot {
  threadId: string;
  title: string;
  version: number;
  archived: boolean;
  session: Pick<ThreadState["session"], "status" | "activeTurnId" | "error">;
  queue: { paused: boolean; pauseReason: ThreadState["pauseReason"]; items: QueueItemView[] };
}

export const itemView = (i: QueueItemState): QueueItemView => ({
  queueItemId: i.queueItemId,
  messageId: i.messageId,
  text: i.text,
  attachments: i.attachments,
  options: i.options,
  status: i.status,
  failureReason: i.failureReason,
  position: i.position,
  attempts: i.attempts,
  createdAt: i.createdAt,
  updatedAt: i.updatedAt,
});

export const snapshotOf = (s: ThreadState): ThreadSnapshot => ({
  threadId: s.threadId,
  title: s.title,
  version: s.version,
  archived: s.archived,
  session: { status: s.session.status, activeTurnId: s.session.activeTurnId, error: s.session.error },
  queue: { paused: s.paused, pauseReason: s.pauseReason, items: orderedItems(s).map(itemView) },
});
