import { fieldsIn, projectTo, type DomainEvent, type QueueItemColumns, type QueueItemState, type ThreadState } from "../domain/index.js";

/**
 * Rows of the projection tables, keyed like the columns of schema.prisma, so the store can
 * hand them to PostgreSQL's jsonb_populate_recordset as they are. Each column of Thread is
 * one line of THREAD_COLUMNS; those of QueueItem come from the item's field table
 * (src/domain/queue-item.ts). The append statement's column lists are derived from both.
 */
export const THREAD_COLUMNS = {
  id: (s: ThreadState) => s.threadId,
  workspaceId: (s: ThreadState) => s.workspaceId,
  title: (s: ThreadState) => s.title,
  version: (s: ThreadState) => s.version,
  archived: (s: ThreadState) => s.archived,
  deleted: (s: ThreadState) => s.deleted,
  sessionStatus: (s: ThreadState) => s.session.status,
  sessionError: (s: ThreadState) => s.session.error,
  activeTurnId: (s: ThreadState) => s.session.activeTurnId,
  paused: (s: ThreadState) => s.paused,
  pauseReason: (s: ThreadState) => s.pauseReason,
  createdAt: (s: ThreadState) => s.createdAt,
  updatedAt: (s: ThreadState) => s.updatedAt,
  runtimeSessionId: (s: ThreadState) => s.session.runtimeSessionId,
};

export type ThreadRow = { [K in keyof typeof THREAD_COLUMNS]: ReturnType<(typeof THREAD_COLUMNS)[K]> };

export type QueueItemRow = QueueItemColumns & { threadId: string };

/** The columns of QueueItem, besides the thread it belongs to. */
export const QUEUE_ITEM_COLUMNS = fieldsIn("row").map(([, column]) => column);

export interface TurnRow {
  threadId: string;
  turnId: string;
  queueItemId: string | null;
  status: string;
  error: string | null;
  startedAt: string;
  endedAt: string | null;
}

export interface MessageRow {
  threadId: string;
  messageId: string;
  queueItemId: string;
  turnId: string;
  text: string;
  attachments: unknown;
  sentAt: string;
  attempts: number | null;
}

/** An event with the stamp the projections read: when it was recorded. */
export type ProjectedEvent = DomainEvent & { createdAt: string };

/** Everything one append changes in the projection tables. */
export interface ProjectionChanges {
  thread: ThreadRow;
  insertItems: QueueItemRow[];
  updateItems: QueueItemRow[];
  deleteItems: string[];
  /** Turns that started in these events (with their end, when it is among them too). */
  startTurns: TurnRow[];
  /** Turns that started earlier and ended in these events. */
  endTurns: Pick<TurnRow, "turnId" | "status" | "error" | "endedAt">[];
  messages: MessageRow[];
}

export const threadRow = (s: ThreadState): ThreadRow =>
  Object.fromEntries(Object.entries(THREAD_COLUMNS).map(([column, of]) => [column, of(s)])) as ThreadRow;

const itemColumns = projectTo("row");
export const queueItemRow = (threadId: string, item: QueueItemState): QueueItemRow => ({ ...itemColumns(item), threadId });

/**
 * Thread and QueueItem rows follow the state; Turn and Message rows follow the events,
 * since the state forgets turns and sent messages. Only the items the events name are
 * compared, so the work is that of the events, not of the queue's length.
 */
export function projectionChanges(before: ThreadState, after: ThreadState, events: readonly ProjectedEvent[]): ProjectionChanges {
  const threadId = after.threadId;
  const insertItems: QueueItemRow[] = [];
  const updateItems: QueueItemRow[] = [];
  const deleteItems: string[] = [];
  const named = new Set<string>();
  for (const e of events) {
    // A deleted thread's items are all gone, named or not.
    if (e.type === "thread.deleted") for (const id of before.items.keys()) named.add(id);
    else if ("queueItemId" in e.payload) named.add(e.payload.queueItemId);
  }
  for (const id of named) {
    const old = before.items.get(id);
    const item = after.items.get(id);
    if (!item) {
      if (old) deleteItems.push(id);
    } else if (!old) insertItems.push(queueItemRow(threadId, item));
    else if (old !== item) updateItems.push(queueItemRow(threadId, item));
  }

  const started = new Map<string, TurnRow>();
  const endTurns: ProjectionChanges["endTurns"] = [];
  const messages: MessageRow[] = [];
  for (const e of events) {
    switch (e.type) {
      case "turn.started":
        started.set(e.payload.turnId, {
          threadId,
          turnId: e.payload.turnId,
          queueItemId: e.payload.queueItemId,
          status: "running",
          error: null,
          startedAt: e.createdAt,
          endedAt: null,
        });
        break;
      case "turn.ended": {
        const end = { turnId: e.payload.turnId, status: e.payload.outcome, error: e.payload.error, endedAt: e.createdAt };
        const turn = started.get(end.turnId);
        if (turn) Object.assign(turn, end);
        else endTurns.push(end);
        break;
      }
      case "message.sent":
        messages.push({
          threadId,
          messageId: e.payload.messageId,
          queueItemId: e.payload.queueItemId,
          turnId: e.payload.turnId,
          text: e.payload.text,
          attachments: e.payload.attachments,
          sentAt: e.createdAt,
          attempts: e.payload.attempts,
        });
        break;
      default:
        // Every other event shows in the projections through the state.
        break;
    }
  }
  return { thread: threadRow(after), insertItems, updateItems, deleteItems, startTurns: [...started.values()], endTurns, messages };
}
