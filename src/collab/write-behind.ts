import type { Logger } from "pino";
import * as Y from "yjs";
import type { DocStore } from "../store/doc-store.js";

/** Tail rows after which the merged state absorbs them. */
const COMPACT_AFTER = 100;
const RETRY_MS = 1_000;

/**
 * Persists a document's updates in order without holding up the document: updates that
 * arrive while a write is in flight are merged into the next one (group commit), so a
 * burst of keystrokes costs a few inserts, not one per keystroke.
 */
export class WriteBehind {
  private pending: Uint8Array[] = [];
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly store: DocStore,
    private readonly threadId: string,
    private tail: number,
    private readonly logger: Logger,
  ) {}

  push(update: Uint8Array): void {
    this.pending.push(update);
    this.running ??= this.drain();
  }

  /** Resolves once everything pushed so far is stored. */
  flushed(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /** Stores what is left, folds the tail into the merged state, and stops retrying. */
  async close(): Promise<void> {
    await this.flushed();
    this.stopped = true;
    if (this.pending.length) await this.writeOnce();
    if (this.tail > 0) await this.store.compact(this.threadId).catch((err: unknown) => this.logger.error({ err }, "document compaction failed"));
  }

  private async drain(): Promise<void> {
    while (this.pending.length && !this.stopped) {
      if (!(await this.writeOnce())) await new Promise((r) => setTimeout(r, RETRY_MS).unref());
    }
    this.running = null;
  }

  private async writeOnce(): Promise<boolean> {
    const batch = this.pending.splice(0);
    const update = batch.length === 1 ? batch[0] : Y.mergeUpdates(batch);
    try {
      await this.store.append(this.threadId, update);
    } catch (err) {
      // The document still holds the update; keep it first in line for the next attempt.
      this.pending.unshift(update);
      this.logger.warn({ err, threadId: this.threadId }, "document update not stored yet; retrying");
      return false;
    }
    if (++this.tail >= COMPACT_AFTER) {
      this.tail = 0;
      await this.store.compact(this.threadId).catch((err: unknown) => this.logger.warn({ err }, "document compaction failed"));
    }
    return true;
  }
}
