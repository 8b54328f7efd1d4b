import { List as PersistentList, Map as PersistentMap, Set as PersistentSet } from "immutable";
import type { DomainEvent } from "./events.js";
import { compareGoing, isWaiting, placeAmong } from "./policy.js";
import type { QueueItemState } from "./queue-item.js";
import { isFrozen, newQueueItem, textHash, type KnownMessage, type ThreadState } from "./state.js";

/** An event with the two stamps evolve needs: its version and when it was recorded. */
export type VersionedEvent = DomainEvent & { version: number; createdAt: string };

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
  resumeAt: null,
  mode: "auto",
  items: PersistentMap(),
  messages: PersistentMap(),
  itemIds: PersistentSet(),
  sending: PersistentSet(),
  waiting: PersistentList(),
  lastPosition: null,
  createdAt: "",
  updatedAt: "",
});

/** The highest key ever given, raised to take `position` in. */
const widen = (last: string | null, position: string): string | null => (last === null || position > last ? position : last);

/**
 * The waiting order after item `id` changed from `before` (or was added, or left): the
 * same list when its place did not change (an edit, a lock), else one with it taken out
 * at its old place and put in at its new one. A new item usually goes last and a claimed
 * one leaves first: the persistent list shares everything else with the one before.
 */
const withWaiting = (state: ThreadState, id: string, before: QueueItemState | undefined): ThreadState => {
  const item = state.items.get(id);
  const was = before !== undefined && isWaiting(before);
  const is = item !== undefined && isWaiting(item);
  if (!was && !is) return state;
  if (was && is && compareGoing(before, item) === 0) return state;
  let waiting = state.waiting;
  // Found at its old place: the items around it have not changed.
  if (was) waiting = waiting.delete(placeAmong(waiting, (w) => (w === id ? before : state.items.get(w)!), before));
  if (is) waiting = waiting.insert(placeAmong(waiting, (w) => state.items.get(w)!, item), id);
  return { ...state, waiting };
};

const withItem = (
  state: ThreadState,
  id: string,
  at: string,
  patch: (item: QueueItemState) => Partial<QueueItemState>,
): ThreadState => {
  const item = state.items.get(id);
  if (!item) return state;
  const next = { ...item, ...patch(item), updatedAt: at };
  return withWaiting({
    ...state,
    items: state.items.set(id, next),
    sending: isFrozen(next) ? state.sending.add(id) : state.sending.delete(id),
    lastPosition: next.position === item.position ? state.lastPosition : widen(state.lastPosition, next.position),
  }, id, item);
};

/** `turnId`: the turn that took it (sent), or null (removed). */
const withoutItem = (state: ThreadState, id: string, turnId: string | null): ThreadState => {
  const item = state.items.get(id);
  if (!item) return state;
  const known = state.messages.get(item.messageId);
  const fate = (k: KnownMessage): KnownMessage =>
    turnId === null
      ? { queueItemId: k.queueItemId, textHash: k.textHash, fate: "removed" }
      : { queueItemId: k.queueItemId, textHash: k.textHash, fate: "sent", turnId };
  return withWaiting({
    ...state,
    items: state.items.delete(id),
    sending: state.sending.delete(id),
    messages: known ? state.messages.set(item.messageId, fate(known)) : state.messages,
  }, id, item);
};

/** Folds one event into the thread's state. Total: never throws, never refuses. */
export function evolve(state: ThreadState, event: VersionedEvent): ThreadState {
  const at = event.createdAt;
  const next = applyEvent(state, event, at);
  return { ...next, version: event.version, updatedAt: at };
}

function applyEvent(s: ThreadState, e: VersionedEvent, at: string): ThreadState {
  switch (e.type) {
    case "thread.created":
      return { ...s, exists: true, workspaceId: e.payload.workspaceId, title: e.payload.title, createdAt: at };
    case "thread.archived":
      return { ...s, archived: true };
    case "thread.renamed":
      return { ...s, title: e.payload.title };
    case "thread.deleted":
      return { ...s, deleted: true, items: s.items.clear(), sending: s.sending.clear(), waiting: s.waiting.clear() };
    case "session.changed": {
      const gone = e.payload.status === "stopped" || e.payload.status === "error";
      return {
        ...s,
        session: {
          status: e.payload.status,
          error: e.payload.error,
          activeTurnId: gone ? null : s.session.activeTurnId,
          interruptRequested: gone ? null : s.session.interruptRequested,
          runtimeSessionId: e.payload.runtimeSessionId ?? s.session.runtimeSessionId,
        },
      };
    }
    case "thread.interrupt-requested":
      return { ...s, session: { ...s.session, interruptRequested: e.payload.turnId } };
    case "queue.item-added": {
      // The log is read back unparsed: an event stored before delivery modes and authors has neither.
      const p = { ...e.payload, delivery: e.payload.delivery ?? "queue", author: e.payload.author ?? null };
      return withWaiting({
        ...s,
        items: s.items.set(p.queueItemId, newQueueItem(p, at)),
        messages: s.messages.set(p.messageId, { queueItemId: p.queueItemId, textHash: textHash(p.text), fate: "queued" }),
        itemIds: s.itemIds.add(p.queueItemId),
        lastPosition: widen(s.lastPosition, p.position),
      }, p.queueItemId, s.items.get(p.queueItemId));
    }
    case "queue.item-edited":
      return withItem(s, e.payload.queueItemId, at, () => ({ text: e.payload.text }));
    case "queue.item-moved":
      return withItem(s, e.payload.queueItemId, at, () => ({ position: e.payload.position }));
    case "queue.item-delivery-changed":
      return withItem(s, e.payload.queueItemId, at, () => ({ delivery: e.payload.delivery }));
    case "queue.item-removed":
      return withoutItem(s, e.payload.queueItemId, null);
    case "queue.item-send-started":
      return withItem(s, e.payload.queueItemId, at, () => ({
        status: "sending",
        attempts: e.payload.attempt,
        dispatchId: e.payload.dispatchId,
        dispatchKind: e.payload.kind,
        notBefore: null,
        editLocks: {},
      }));
    case "queue.item-edit-locked":
      return withItem(s, e.payload.queueItemId, at, (item) => {
        const { [e.payload.holder]: _ended, ...others } = item.editLocks;
        return { editLocks: e.payload.until === null ? others : { ...others, [e.payload.holder]: e.payload.until } };
      });
    case "queue.item-typing-revoked":
      return withItem(s, e.payload.queueItemId, at, (item) => ({
        editLocks: Object.fromEntries(Object.entries(item.editLocks).filter(([holder]) => !e.payload.holders.includes(holder))),
        typingRevokedAt: e.version,
      }));
    case "queue.item-send-failed":
      return withItem(s, e.payload.queueItemId, at, (item) => ({
        status: e.payload.final ? "failed" : "pending",
        // (absent in failures stored before rate limits: those counted)
        attempts: e.payload.rateLimited === true ? Math.max(0, item.attempts - 1) : item.attempts,
        failureReason: e.payload.reason,
        // A rate limit's time is the hold's (resumeAt), not the item's.
        notBefore: e.payload.final || e.payload.rateLimited === true ? null : e.payload.retryAt,
        dispatchId: null,
        dispatchKind: null,
      }));
    case "queue.item-requeued":
      return withItem(s, e.payload.queueItemId, at, () => ({
        status: "pending",
        failureReason: null,
        attempts: 0,
        notBefore: null,
      }));
    case "queue.item-resolved":
      return withoutItem(s, e.payload.queueItemId, e.payload.turnId);
    case "queue.paused":
      // `?? null`: a pause stored before rate-limit holds has no resumeAt.
      return { ...s, paused: true, pauseReason: e.payload.reason, resumeAt: e.payload.resumeAt ?? null };
    case "queue.resumed":
      return { ...s, paused: false, pauseReason: null, resumeAt: null };
    case "queue.mode-changed":
      return { ...s, mode: e.payload.mode };
    case "turn.started":
      return {
        ...s,
        session: { ...s.session, status: "running", activeTurnId: e.payload.turnId, interruptRequested: null },
      };
    case "turn.ended":
      // The session is idle again once its turn has ended: that is what lets the next item go.
      return {
        ...s,
        session: {
          ...s.session,
          activeTurnId: null,
          interruptRequested: null,
          status: s.session.status === "running" ? "ready" : s.session.status,
        },
      };
    case "message.sent":
      return s;
    default:
      return assertNever(e);
  }
}

export function assertNever(x: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(x)}`);
}

export const replay = (state: ThreadState, events: readonly VersionedEvent[]): ThreadState =>
  events.reduce(evolve, state);
