import { projectTo, type QueueItemView } from "./queue-item.js";
import { orderedItems, type ThreadState } from "./state.js";

/** The public ThreadSnapshot (docs/contract.md). */
export interface ThreadSnapshot {
  threadId: string;
  title: string;
  version: number;
  archived: boolean;
  session: Pick<ThreadState["session"], "status" | "activeTurnId" | "error" | "runtimeSessionId">;
  queue: { paused: boolean; pauseReason: ThreadState["pauseReason"]; items: QueueItemView[] };
}

/** The public QueueItem, as clients see it: an item's state minus the drain's bookkeeping. */
export const itemView = projectTo("view");

export const snapshotOf = (s: ThreadState): ThreadSnapshot => ({
  threadId: s.threadId,
  title: s.title,
  version: s.version,
  archived: s.archived,
  session: { status: s.session.status, activeTurnId: s.session.activeTurnId, error: s.session.error, runtimeSessionId: s.session.runtimeSessionId },
  queue: { paused: s.paused, pauseReason: s.pauseReason, items: orderedItems(s).map(itemView) },
});
