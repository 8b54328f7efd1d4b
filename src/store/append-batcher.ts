import type { StoredEvent } from "../domain/index.js";
import { isUnavailable, translate, uniqueViolation } from "./errors.js";
import { writeChains } from "./append-statement.js";
import type { Sql } from "./sql.js";
import { VersionConflictError, type AppendRequest } from "./types.js";

interface Pending {
  chain: AppendRequest[];
  /** Rough size of what the chain writes (its events as JSON), to bound a statement's size. */
  bytes: number;
  resolve(events: StoredEvent[][]): void;
  reject(error: unknown): void;
}

/** Bounds of one statement: appends, and bytes of events (texts run to 100,000 characters). */
const MAX_APPENDS = 256;
const MAX_BYTES = 4 << 20;

/**
 * Group commit: appends submitted while a write is running are written together by the
 * next one, in one statement, so a burst of commands costs a few round trips and commits
 * instead of one each. When a combined write fails for any reason but an outage (one chain
 * lost its version race, or holds a value the database refuses), each chain is written
 * alone, so one bad chain never fails the others.
 */
export class AppendBatcher {
  private readonly queue: Pending[] = [];
  private readonly running = new Set<Promise<void>>();
  private scheduled = false;

  constructor(
    private readonly sql: Sql,
    private readonly concurrency: number,
  ) {}

  submit(chain: AppendRequest[]): Promise<StoredEvent[][]> {
    return new Promise((resolve, reject) => {
      const bytes = chain.reduce((n, r) => n + JSON.stringify(r.events).length, 0);
      this.queue.push({ chain, bytes, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves when everything submitted so far is written (or failed). */
  async idle(): Promise<void> {
    for (;;) {
      if (this.running.size > 0) await Promise.all(this.running);
      else if (this.scheduled) await new Promise((resolve) => setImmediate(resolve));
      else return;
    }
  }

  /**
   * Writes start after the I/O callbacks already due have run, so the commands of every
   * request read in this turn of the event loop share a statement. Without the wait, a
   * store that answers within the turn (PGlite runs in this process) would never have a
   * write in flight when the next command comes, and would take one statement per command.
   */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.running.size < this.concurrency && this.queue.length > 0) {
      const flush = this.flush(this.takeBatch()).finally(() => {
        this.running.delete(flush);
        this.schedule();
      });
      this.running.add(flush);
    }
  }

  /** The oldest chains, as many as fit in one statement (always at least one). */
  private takeBatch(): Pending[] {
    let appends = 0;
    let bytes = 0;
    let n = 0;
    for (const p of this.queue) {
      appends += p.chain.length;
      bytes += p.bytes;
      if (n > 0 && (appends > MAX_APPENDS || bytes > MAX_BYTES)) break;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async flush(batch: Pending[]): Promise<void> {
    try {
      const written = await writeChains(this.sql, batch.map((p) => p.chain));
      batch.forEach((p, i) => p.resolve(written[i]!));
      return;
    } catch (error) {
      // An outage fails every chain alike; anything else may be one chain's fault (a version
      // race lost, a value the database refuses), so each is written alone below.
      if (batch.length === 1 || isUnavailable(error)) {
        for (const p of batch) p.reject(failure(error, p.chain));
        return;
      }
    }
    await Promise.all(
      batch.map(async (p) => {
        try {
          p.resolve((await writeChains(this.sql, [p.chain]))[0]!);
        } catch (error) {
          p.reject(failure(error, p.chain));
        }
      }),
    );
  }
}

/** A taken version slot or command id means: reload and decide again. */
function failure(error: unknown, chain: AppendRequest[]): unknown {
  const constraint = uniqueViolation(error);
  if (constraint === "Event_threadId_version_key" || constraint === "CommandResult_pkey") {
    return new VersionConflictError(chain[0]!.threadId, chain[0]!.expectedVersion);
  }
  try {
    return translate(error);
  } catch (translated) {
    return translated;
  }
}
