import type { DomainEvent, StoredEvent, ThreadState, TurnOutcome } from "../domain/index.js";

/** The database went away (or never came): commands fail fast with a retryable error. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreUnavailableError";
  }
}

/** Another writer appended to the thread first; reload and decide again. */
export class VersionConflictError extends Error {
  constructor(readonly threadId: string, readonly expectedVersion: number) {
    super(`thread ${threadId} moved past version ${expectedVersion}`);
    this.name = "VersionConflictError";
  }
}

export interface AppendRequest {
  threadId: string;
  workspaceId: string;
  /** The thread version the events were decided on. */
  expectedVersion: number;
  commandId: string;
  /** Hash of the command, so a reused commandId with another command is detected. */
  fingerprint: string;
  actor: string;
  createdAt: string;
  events: DomainEvent[];
  /** State before and after, for the projections written in the same transaction. */
  before: ThreadState;
  after: ThreadState;
  /** Remembered for idempotent retries of `commandId`. */
  result: unknown;
}

export interface RememberedCommand {
  fingerprint: string;
  result: unknown;
}

export interface ThreadSummary {
  threadId: string;
  title: string;
  archived: boolean;
  sessionStatus: string;
  paused: boolean;
  /** Why the queue holds, when it does (`user`, `failure`, `interrupted`, …). */
  pauseReason: string | null;
  queueLength: number;
  /** Items that failed and wait for a person (Retry or Remove). */
  failedCount: number;
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** A message that left the queue, with what became of the turn that took it. */
export interface HistoryEntry {
  messageId: string;
  queueItemId: string;
  text: string;
  sentAt: string;
  turnId: string;
  /** Start attempts it took (the last one started the turn); null when sent before they were recorded. */
  attempts: number | null;
  /** `running` while the turn goes on; then how it ended. */
  outcome: "running" | "completed" | "interrupted" | "failed";
  error: string | null;
  startedAt: string | null;
  endedAt: string | null;
}

/** The event log and its projections. One implementation, on Prisma, for PGlite and PostgreSQL. */
export interface EventStore {
  /** Events of one thread with version > afterVersion, in order. */
  readThread(threadId: string, afterVersion: number): Promise<StoredEvent[]>;
  /** Events of one thread with seq > afterSeq (for resumable `thread.events`). */
  readThreadSince(threadId: string, afterSeq: string | null, limit: number): Promise<StoredEvent[]>;
  /** Atomically: events (expected version), command memory, projections. */
  append(request: AppendRequest): Promise<StoredEvent[]>;
  /**
   * Consecutive appends to one thread, each decided on the state the previous one leaves
   * (expectedVersion chained), written atomically together: all of them or none.
   */
  appendChain(requests: AppendRequest[]): Promise<StoredEvent[][]>;
  findCommand(threadId: string, commandId: string): Promise<RememberedCommand | null>;
  listThreads(workspaceId: string, cursor: string | null, limit: number): Promise<{ items: ThreadSummary[]; nextCursor: string | null }>;
  /** The summaries of these threads of the workspace; a deleted or unknown one is absent. */
  threadSummaries(workspaceId: string, threadIds: readonly string[]): Promise<ThreadSummary[]>;
  /** How a turn ended (the Turn projection); null while it runs or when there is no such turn. */
  turnOutcome(threadId: string, turnId: string): Promise<TurnOutcome | null>;
  /** A thread's sent messages, newest first, paged like `listThreads`. */
  readHistory(threadId: string, cursor: string | null, limit: number): Promise<{ items: HistoryEntry[]; nextCursor: string | null }>;
  /**
   * Dispatches not yet acknowledged in a workspace: the claim events of every item still
   * `sending`, and the interrupt requests of turns still running.
   */
  unacknowledgedDispatches(workspaceId: string): Promise<StoredEvent[]>;
  /** Threads that may have work: items pending or sending (startup recovery and sweeps). */
  threadsWithWork(): Promise<string[]>;
  /** The log's version of each of these threads (deleted ones too); an unknown one is absent. */
  threadVersions(threadIds: readonly string[]): Promise<Map<string, number>>;
  /** Workspace of a thread (for authorization), null when unknown or deleted. */
  workspaceOf(threadId: string): Promise<string | null>;
  /**
   * Workspace a thread was created in, deleted or not; null when there is no such thread.
   * A thread never changes workspace, so a found owner is remembered and costs no round trip.
   */
  ownerOf(threadId: string): Promise<string | null>;
  /** Cheap round trip: is the database reachable and migrated? */
  ping(): Promise<void>;
  close(): Promise<void>;
}
