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
  return null;
}

export const isEligible = (state: ThreadState, now: Date): boolean => drainBlocker(state, now) === null;

/** When a thread blocked only by a retry backoff becomes eligible; null otherwise. */
export function nextWakeAt(state: ThreadState, now: Date): Date | null {
  const head = headPending(state);
  if (!head?.notBefore) return null;
  const at = new Date(head.notBefore);
  if (at.getTime() <= now.getTime()) return null;
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

/** When the thread should be looked at again: its dispatch deadline, or the end of its head's backoff. */
export function drainWakeAt(state: ThreadState, now: Date, policy: DrainPolicy, clockStart: number): Date | null {
  const sending = sendingItem(state);
  if (sending) return dispatchDeadline(sending, policy, clockStart);
  return nextWakeAt(state, now);
}
