import type { Command } from "./commands.js";
import type { QueueItemState } from "./queue-item.js";
import { endOfQueue, sendingItem, type ThreadState } from "./state.js";

/** The numbers of the drain policy; the server's config supplies them. */
export interface DrainPolicy {
  /** Start attempts of one item before a retryable failure becomes permanent. */
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** A claim whose turn the agent has not started after this long fails with "timeout". */
  dispatchTimeoutMs: number;
}

export const defaultDrainPolicy: DrainPolicy = { maxAttempts: 5, retryBaseMs: 500, retryMaxMs: 30_000, dispatchTimeoutMs: 60_000 };

/** Exponential backoff before attempt `attempt + 1`. */
export const backoffMs = (attempt: number, policy: DrainPolicy): number =>
  Math.min(policy.retryMaxMs, policy.retryBaseMs * 2 ** Math.max(0, attempt - 1));

/** The item that drains next: the first `pending` one in order (failed items keep their place). */
export const headPending = (state: ThreadState): QueueItemState | undefined =>
  endOfQueue(state, "first", (i) => i.status === "pending");

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

/** Why a thread cannot drain right now, or null when it can (the rule in one place). */
export function drainBlocker(state: ThreadState, now: Date): string | null {
  if (!state.exists || state.deleted) return "no thread";
  if (state.archived) return "archived";
  if (state.paused) return `paused (${state.pauseReason})`;
  if (state.session.status !== "ready") return `session ${state.session.status}`;
  if (state.session.activeTurnId) return "turn in progress";
  if (sendingItem(state)) return "an item is being sent";
  const head = headPending(state);
  if (!head) return "queue empty";
  if (head.notBefore && Date.parse(head.notBefore) > now.getTime()) return "head waits for its retry";
  // The queue waits at the item being edited: the next one does not go first (order holds).
  if (isEditLocked(head, now)) return "head is being edited";
  return null;
}

export const isEligible = (state: ThreadState, now: Date): boolean => drainBlocker(state, now) === null;

/** When a thread blocked only by its head's retry backoff or edit lock becomes eligible; null otherwise. */
export function nextWakeAt(state: ThreadState, now: Date): Date | null {
  const head = headPending(state);
  if (!head) return null;
  const waits = [head.notBefore ? Date.parse(head.notBefore) : 0, editLockedUntil(head, now)?.getTime() ?? 0].filter((t) => t > now.getTime());
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
 * The drain command due now on this state, if any: the timeout of an overdue dispatch, or
 * the claim of an eligible thread. The decider checks everything again; this only spares
 * useless writes.
 */
export function drainCommandDue(state: ThreadState, now: Date, policy: DrainPolicy, clockStart: number): Command | null {
  const sending = sendingItem(state);
  if (sending && sending.dispatchId && dispatchDeadline(sending, policy, clockStart) <= now) {
    return { type: "drain.timeout", queueItemId: sending.queueItemId, dispatchId: sending.dispatchId };
  }
  return isEligible(state, now) ? { type: "drain.claim" } : null;
}

/** When the thread should be looked at again: its dispatch deadline, or the end of its head's backoff or edit lock. */
export function drainWakeAt(state: ThreadState, now: Date, policy: DrainPolicy, clockStart: number): Date | null {
  const sending = sendingItem(state);
  if (sending) return dispatchDeadline(sending, policy, clockStart);
  return nextWakeAt(state, now);
}
