import { endOfQueue, sendingItem, type QueueItemState, type ThreadState } from "./state.js";

/** The numbers of the drain policy; the server's config supplies them. */
export interface DrainPolicy {
  /** Start attempts of one item before a retryable failure becomes permanent. */
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

export const defaultDrainPolicy: DrainPolicy = { maxAttempts: 5, retryBaseMs: 500, retryMaxMs: 30_000 };

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
