import type { Command, StoredEvent, ThreadState } from "../domain/index.js";
import type { EventFeed } from "./feed.js";

/**
 * Resolves once every change a client was told is accepted on the thread is committed to
 * the log, so that a claim decided after it carries those changes. It may issue commands on
 * the thread itself: barriers run outside the thread's lane. Nothing to wait for: return
 * nothing, and the command is decided without a pause (most commands that may claim are
 * adds and turn ends, on threads nobody is typing in).
 */
export type PreClaimBarrier = (threadId: string) => Promise<void> | void;

export interface ExecuteOptions {
  /** Idempotency key: a retried command with the same id returns the first result. */
  commandId?: string;
  /** Who issued it: `user:<sub>`, `agent:<sub>`, `reactor:drain`, `collab:<sub>`… A label for the log: no rule reads it. */
  actor: string;
}

export interface ExecuteResult {
  /** The thread's version after the command (unchanged when it produced no events). */
  version: number;
  /** Events this command appended (empty for no-ops and for idempotent replays). */
  events: StoredEvent[];
  /** The thread's state right after the command. */
  state: ThreadState;
  /** True when `commandId` had already run and this is its remembered outcome. */
  replayed: boolean;
}

/**
 * command → decide → append → project → publish. Serializes commands per thread in this
 * process, retries on version conflicts with other processes, publishes committed events
 * on the bus (`feed`). Throws DomainError (refusals) and StoreUnavailableError (database down).
 */
export interface Engine {
  /** Every committed event, from this instance and the others: what reactors and streams read. */
  readonly feed: EventFeed;
  execute(threadId: string, command: Command, options: ExecuteOptions): Promise<ExecuteResult>;
  /**
   * Current state of a thread (from cache, caught up with the log). With `seen`, the
   * version of a commit the caller read on the feed: a cached state at least that new is
   * enough, and the log is not read (what committed after it is on its way on the feed).
   */
  load(threadId: string, seen?: number): Promise<ThreadState>;
  /**
   * Adds a barrier every command that may claim (the domain's `mayClaim`) waits for before
   * it is decided. Returns its removal.
   */
  addPreClaimBarrier(barrier: PreClaimBarrier): () => void;
  close(): Promise<void>;
}
