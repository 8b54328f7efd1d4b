import type { Command, StoredEvent, ThreadState } from "../domain/index.js";

export interface ExecuteOptions {
  /** Idempotency key: a retried command with the same id returns the first result. */
  commandId?: string;
  /** Who issued it: `user:<sub>`, `agent:<sub>`, `reactor:drain`, `collab:<sub>`… */
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
 * on the bus. Throws DomainError (refusals) and StoreUnavailableError (database down).
 */
export interface Engine {
  execute(threadId: string, command: Command, options: ExecuteOptions): Promise<ExecuteResult>;
  /** Current state of a thread (from cache, caught up with the log). */
  load(threadId: string): Promise<ThreadState>;
  /**
   * Work that must finish before a claim is decided for a thread (collab flushes coalesced
   * text edits here, so the agent gets the last acknowledged text). Returns an unregister.
   */
  beforeClaim(hook: (threadId: string) => Promise<void>): () => void;
  close(): Promise<void>;
}
