import type { Logger } from "pino";
import * as Y from "yjs";
import type { DocStore } from "../store/doc-store.js";

/** Tail rows of a thread after which its merged state absorbs them. */
const COMPACT_AFTER = 100;
const RETRY_MS = 1_000;

/**
 * Persists the updates of every loaded document in order without holding any of them up:
 * what arrives while a write is in flight goes into the next one, merged per thread, all
 * threads in one statement (group commit). A burst of keystrokes on many threads costs a
 * few inserts, not one per keystroke.
 */
export class WriteBehind {
  private pending = new Map<string, Uint8Array[]>();
  private running: Promise<void> | null = null;
  /**
   * Updates pushed, and how many of the first of them are stored (or dropped: forgotten, or
   * lost at shutdown). `flushed()` waits for the count at its call only: under steady typing
   * the writes never go idle, and a commit waiting for idleness would wait for the typing to stop.
   */
  private pushed = 0;
  private stored = 0;
  private waiters: { upTo: number; resolve(): void }[] = [];
  /** Rows appended per thread since its last compaction. */
  private readonly tails = new Map<string, number>();
  private stopping = false;
  /** Compactions run one at a time: a burst of unloads must not take every database connection. */
  private compactions: Promise<void> = Promise.resolve();

  /** While a write waits out `gatherMs`: starts it now (someone waits for what it holds). */
  private wake: (() => void) | null = null;

  constructor(
    private readonly store: DocStore,
    private readonly logger: Logger,
    /** How long updates gather before a write that nobody waits for (0: the next turn of the loop). */
    private readonly gatherMs = 0,
  ) {}

  /** A document was loaded with `tail` rows not yet compacted. */
  track(threadId: string, tail: number): void {
    this.tails.set(threadId, tail);
  }

  push(threadId: string, update: Uint8Array): void {
    const list = this.pending.get(threadId);
    if (list) list.push(update);
    else this.pending.set(threadId, [update]);
    this.pushed++;
    this.running ??= this.drain();
  }

  /** Resolves once everything pushed so far is stored. */
  flushed(): Promise<void> {
    if (this.stored >= this.pushed) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.waiters.push({ upTo: this.pushed, resolve }));
    this.wake?.();
    return done;
  }

  /** Everything of this thread stored and its tail folded into the merged state (at unload). */
  async release(threadId: string): Promise<void> {
    await this.flushed();
    const tail = this.tails.get(threadId) ?? 0;
    this.tails.delete(threadId);
    if (tail > 0) await this.compact(threadId);
  }

  /** A deleted thread: nothing of it is written any more. */
  forget(threadId: string): void {
    this.pending.delete(threadId);
    this.tails.delete(threadId);
    if (!this.running) this.storedUpTo(this.pushed);
  }

  /** Shutting down: a failed write is reported, not retried forever. */
  stop(): void {
    this.stopping = true;
  }

  private async drain(): Promise<void> {
    while (this.pending.size) {
      await this.gather();
      const batch = this.pending;
      this.pending = new Map();
      const upTo = this.pushed;
      const rows = [...batch].map(([threadId, updates]) => ({ threadId, update: updates.length === 1 ? updates[0] : Y.mergeUpdates(updates) }));
      try {
        await this.store.append(rows);
      } catch (err) {
        if (this.stopping) {
          this.logger.error({ err, threads: rows.map((r) => r.threadId) }, "document updates lost at shutdown: the store is unavailable");
          this.storedUpTo(upTo);
          continue;
        }
        // The documents still hold these updates; they go first in the next attempt.
        for (const row of rows) this.pending.set(row.threadId, [row.update, ...(this.pending.get(row.threadId) ?? [])]);
        this.logger.warn({ err }, "document updates not stored yet; retrying");
        await new Promise((r) => setTimeout(r, RETRY_MS).unref());
        continue;
      }
      this.storedUpTo(upTo);
      for (const { threadId } of rows) {
        const tail = (this.tails.get(threadId) ?? 0) + 1;
        this.tails.set(threadId, tail >= COMPACT_AFTER ? 0 : tail);
        if (tail >= COMPACT_AFTER) void this.compact(threadId);
      }
    }
    this.running = null;
    // Nothing is left pending: whatever was pushed is stored, or was forgotten meanwhile.
    this.storedUpTo(this.pushed);
  }

  /**
   * Until the next write starts. Always past the I/O callbacks already due: the keystrokes of
   * every socket read in this turn of the event loop go into one write (without the wait, a
   * store that answers within the turn, PGlite in this process, would get one insert per
   * update). With `gatherMs`, longer, unless someone waits for the write (a commit of typed
   * text, an unload): then at once.
   */
  private gather(): Promise<void> {
    const now = () => new Promise<void>((resolve) => setImmediate(resolve));
    if (this.gatherMs === 0 || this.waiters.length > 0) return now();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, this.gatherMs);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        void now().then(resolve);
      };
    });
  }

  private storedUpTo(upTo: number): void {
    if (upTo <= this.stored) return;
    this.stored = upTo;
    const due = this.waiters.filter((w) => w.upTo <= upTo);
    if (due.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.upTo > upTo);
    for (const w of due) w.resolve();
  }

  /** A failed compaction loses nothing: the tail stays and is merged at the next load. */
  private compact(threadId: string): Promise<void> {
    this.compactions = this.compactions.then(() =>
      this.store.compact(threadId).catch((err: unknown) => this.logger.warn({ err, threadId }, "document compaction failed; the tail stays")),
    );
    return this.compactions;
  }
}
