import { assertNever } from "./evolve.js";
import { placeInLine } from "./policy.js";
import type { TurnOutcome } from "./primitives.js";
import { projectTo, type QueueItemView } from "./queue-item.js";
import { orderedItems, type ThreadState } from "./state.js";

/** The public ThreadSnapshot (docs/contract.md). */
export interface ThreadSnapshot {
  threadId: string;
  title: string;
  version: number;
  archived: boolean;
  session: Pick<ThreadState["session"], "status" | "activeTurnId" | "error" | "runtimeSessionId">;
  queue: {
    paused: boolean;
    pauseReason: ThreadState["pauseReason"];
    /** When the hold ends by itself (a rate limit's reset), else null. */
    resumeAt: string | null;
    mode: ThreadState["mode"];
    items: QueueItemView[];
  };
}

/** The public QueueItem, as clients see it: an item's state minus the drain's bookkeeping. */
export const itemView = projectTo("view");

export const snapshotOf = (s: ThreadState): ThreadSnapshot => ({
  threadId: s.threadId,
  title: s.title,
  version: s.version,
  archived: s.archived,
  session: { status: s.session.status, activeTurnId: s.session.activeTurnId, error: s.session.error, runtimeSessionId: s.session.runtimeSessionId },
  queue: { paused: s.paused, pauseReason: s.pauseReason, resumeAt: s.resumeAt, mode: s.mode, items: orderedItems(s).map(itemView) },
});

/**
 * What became of a message (`queue.status`), so a client that lost its connection asks
 * instead of sending again. `position`: its place, from 1, in the order the waiting items
 * will go; `outcome`: the turn's, once it ended (the Turn projection's: `messageStatus`
 * answers from the state, which keeps no turn outcomes, and the procedure adds it).
 */
export type MessageStatus =
  | { state: "queued"; queueItemId: string; position: number }
  | { state: "sending"; queueItemId: string }
  | { state: "sent"; queueItemId: string; turnId: string; outcome?: TurnOutcome }
  | { state: "failed"; queueItemId: string; reason: string }
  | { state: "removed"; queueItemId: string }
  | { state: "unknown" };

export function messageStatus(s: ThreadState, messageId: string): MessageStatus {
  const known = s.messages.get(messageId);
  if (!known) return { state: "unknown" };
  const { queueItemId } = known;
  switch (known.fate) {
    case "removed":
      return { state: "removed", queueItemId };
    case "sent":
      return { state: "sent", queueItemId, turnId: known.turnId };
    case "queued": {
      const item = s.items.get(queueItemId);
      // A deleted thread's items are gone with it.
      if (!item) return { state: "removed", queueItemId };
      switch (item.status) {
        case "sending":
          return { state: "sending", queueItemId };
        case "failed":
          return { state: "failed", queueItemId, reason: item.failureReason ?? "" };
        case "pending":
          return { state: "queued", queueItemId, position: placeInLine(s, item)! };
        default:
          return assertNever(item.status);
      }
    }
    default:
      return assertNever(known);
  }
}
