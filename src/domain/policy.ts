import type { List as PersistentList } from "immutable";
import type { Command } from "./commands.js";
import type { Dispatch } from "./events.js";
import { compareOrder } from "./ordering.js";
import type { Delivery, DispatchKind } from "./primitives.js";
import type { QueueItemState } from "./queue-item.js";
import { sendingItem, type ThreadState } from "./state.js";

/** The numbers of the queue's policy (the drain's and the queue's bound); the server's config supplies them. */
export interface DrainPolicy {
  /** Items a thread holds at most (pending, sending and failed); one more is refused QUEUE_FULL. */
  maxQueueItems: number;
  /** Start attempts of one item before a retryable failure becomes permanent. */
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** A claim whose turn the agent has not started after this long fails with "timeout". */
  dispatchTimeoutMs: number;
}

export const defaultDrainPolicy: DrainPolicy = { maxQueueItems: 1000, maxAttempts: 5, retryBaseMs: 500, retryMaxMs: 30_000, dispatchTimeoutMs: 60_000 };

/** Exponential backoff before attempt `attempt + 1`. */
export const backoffMs = (attempt: number, policy: DrainPolicy): number =>
  Math.min(policy.retryMaxMs, policy.retryBaseMs * 2 ** Math.max(0, attempt - 1));

/** Interrupts go before steers, steers before the rest. */
const DELIVERY_RANK: Record<Delivery, number> = { interrupt: 0, steer: 1, queue: 2 };

/**
 * The order in which waiting items go: the interrupts, then the steers, then the rest, each
 * group in queue order (so steers keep their order among themselves).
 */
export const compareGoing = (a: QueueItemState, b: QueueItemState): number =>
  DELIVERY_RANK[a.delivery] - DELIVERY_RANK[b.delivery] || compareOrder(a, b);

export const isWaiting = (item: QueueItemState): boolean => item.status === "pending";

/**
 * The rule of which item goes next: the first `interrupt` item, else the first `steer` item,
 * else the head in queue order. Failed items keep their place and are skipped. A walk over
 * the queue, the rule's statement: evolve keeps the waiting items in this order
 * (`ThreadState.waiting`), and the property tests hold the two to each other.
 */
export function firstGoing(items: Iterable<QueueItemState>): QueueItemState | undefined {
  let best: QueueItemState | undefined;
  for (const item of items) if (isWaiting(item) && (!best || compareGoing(item, best) < 0)) best = item;
  return best;
}

/** The item that goes next (`firstGoing` of the queue), without a walk over it. */
export const nextItem = (state: ThreadState): QueueItemState | undefined => {
  const head = state.waiting.first();
  return head === undefined ? undefined : state.items.get(head);
};

/**
 * Where `item` goes among `waiting` (ids in going order, their items given by `itemOf`):
 * the first index whose item does not go before it (a binary search).
 */
export function placeAmong(waiting: PersistentList<string>, itemOf: (id: string) => QueueItemState, item: QueueItemState): number {
  let low = 0;
  let high = waiting.size;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (compareGoing(itemOf(waiting.get(mid)!), item) < 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** A waiting item's place in the order they will go, from 1; null for an item that is not waiting. */
export function placeInLine(state: ThreadState, item: QueueItemState): number | null {
  if (!isWaiting(item)) return null;
  return placeAmong(state.waiting, (id) => state.items.get(id)!, item) + 1;
}

/**
 * Someone is typing into the item (a connected device's presence names it and its
 * keystrokes keep coming): it is not claimed, so the agent gets the text as finished.
 * Each lock lapses by itself, so a device or an instance that vanishes holds nothing.
 */
export const editLockedUntil = (item: Pick<QueueItemState, "editLocks">, now: Date): Date | null => {
  const last = Math.max(0, ...Object.values(item.editLocks).map(Date.parse));
  return last > now.getTime() ? new Date(last) : null;
};
export const isEditLocked = (item: Pick<QueueItemState, "editLocks">, now: Date): boolean => editLockedUntil(item, now) !== null;

/**
 * What the drain does next on a thread:
 * - `claim`: send `item` as a new turn, or as a steer into turn `expectedTurnId`; `lift`:
 *   the hold it goes past ends with it (a steer or interrupt goes past every hold but a rate
 *   limit; the user's own pause stays for the rest of the queue, any other hold is lifted);
 * - `interrupt`: stop the running turn `turnId` so that an interrupt item goes first;
 * - a string: why nothing can go now.
 */
export type DrainStep =
  | { kind: "claim"; item: QueueItemState; dispatch: DispatchKind; expectedTurnId: string | null; lift: boolean }
  | { kind: "interrupt"; turnId: string };

/** The rule of what goes next, and when, in one place (docs/design.md, "The queue's rules"). */
export function drainStep(state: ThreadState, now: Date): DrainStep | string {
  if (!state.exists || state.deleted) return "no thread";
  if (state.archived) return "archived";
  if (state.paused && state.pauseReason === "rate-limited") return "paused (rate-limited)";
  if (sendingItem(state)) return "an item is being sent";
  const next = nextItem(state);
  if (!next) return "queue empty";
  const urgent = next.delivery !== "queue";
  if (state.paused && !urgent) return `paused (${state.pauseReason})`;
  const { activeTurnId, interruptRequested, status } = state.session;
  if (activeTurnId) {
    if (!urgent) return "turn in progress";
    // The turn is being stopped: a steer into it would be lost, an interrupt is under way.
    if (interruptRequested === activeTurnId) return "turn being interrupted";
    if (next.delivery === "interrupt") return { kind: "interrupt", turnId: activeTurnId };
  } else if (!sessionTakesTurns(state)) return `session ${status}`;
  if (next.notBefore && Date.parse(next.notBefore) > now.getTime()) return "next item waits for its retry";
  // The queue waits at the item being edited: the one after it does not go first (order holds).
  if (isEditLocked(next, now)) return "next item is being edited";
  const lift = state.paused && state.pauseReason !== "user";
  return activeTurnId
    ? { kind: "claim", item: next, dispatch: "steer", expectedTurnId: activeTurnId, lift }
    : { kind: "claim", item: next, dispatch: "turn", expectedTurnId: null, lift };
}

/** A session takes a new turn when ready, or rate limited once the hold for it has ended (by its time or a user's resume). */
const sessionTakesTurns = (state: ThreadState): boolean => state.session.status === "ready" || state.session.status === "rate-limited";

/** Why a thread cannot drain right now, or null when it can. */
export function drainBlocker(state: ThreadState, now: Date): string | null {
  const step = drainStep(state, now);
  return typeof step === "string" ? step : null;
}

export const isEligible = (state: ThreadState, now: Date): boolean => drainBlocker(state, now) === null;

/** A rate-limit hold whose time has come. */
export const rateLimitOver = (state: ThreadState, now: Date): boolean =>
  state.paused && state.pauseReason === "rate-limited" && state.resumeAt !== null && Date.parse(state.resumeAt) <= now.getTime();

/**
 * When a thread waiting only for time becomes eligible: the end of a rate-limit hold, or of
 * the next item's retry backoff or edit lock; null otherwise.
 */
export function nextWakeAt(state: ThreadState, now: Date): Date | null {
  if (state.paused && state.pauseReason === "rate-limited") return state.resumeAt ? new Date(Math.max(Date.parse(state.resumeAt), now.getTime())) : null;
  const next = nextItem(state);
  if (!next) return null;
  const waits = [next.notBefore ? Date.parse(next.notBefore) : 0, editLockedUntil(next, now)?.getTime() ?? 0].filter((t) => t > now.getTime());
  if (waits.length === 0) return null;
  const at = new Date(Math.max(...waits));
  return drainBlocker(state, at) === null ? at : null;
}

/**
 * When a sending item's dispatch times out. Its `updatedAt` is its claim time (nothing else
 * may change a frozen item). The clock starts no earlier than `clockStart`, the moment this
 * server started: an agent could not start a turn while the server was down, so a restart
 * gives it a full timeout to reconnect.
 */
export const dispatchDeadline = (item: QueueItemState, policy: DrainPolicy, clockStart: number): Date =>
  new Date(Math.max(Date.parse(item.updatedAt), clockStart) + policy.dispatchTimeoutMs);

/**
 * Whether the thread still waits on this dispatch: its item is being sent under this very
 * claim, or the turn it stops still runs. A claim the log timed out, or whose item or thread
 * is gone since, is owed to nobody.
 */
export function awaitsDispatch(state: ThreadState, dispatch: Dispatch): boolean {
  if (dispatch.kind === "interrupt") return state.session.activeTurnId === dispatch.expectedTurnId;
  const item = state.items.get(dispatch.queueItemId);
  return item?.status === "sending" && item.dispatchId === dispatch.dispatchId;
}

/**
 * The drain command due now on this state, if any: the timeout of an overdue dispatch, the
 * end of a rate-limit hold, or the claim (or interrupt) of an eligible thread. The decider
 * checks everything again; this only spares useless writes.
 */
export function drainCommandDue(state: ThreadState, now: Date, policy: DrainPolicy, clockStart: number): Command | null {
  const sending = sendingItem(state);
  if (sending && sending.dispatchId && dispatchDeadline(sending, policy, clockStart) <= now) {
    return { type: "drain.timeout", queueItemId: sending.queueItemId, dispatchId: sending.dispatchId };
  }
  if (rateLimitOver(state, now)) return { type: "drain.resume" };
  return isEligible(state, now) ? { type: "drain.claim" } : null;
}

/** When the thread should be looked at again: its dispatch deadline, its rate limit's end, or the end of its next item's backoff or edit lock. */
export function drainWakeAt(state: ThreadState, now: Date, policy: DrainPolicy, clockStart: number): Date | null {
  const sending = sendingItem(state);
  if (sending) return dispatchDeadline(sending, policy, clockStart);
  return nextWakeAt(state, now);
}
