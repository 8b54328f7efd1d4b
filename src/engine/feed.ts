import { EventEmitter, on } from "node:events";
import type { Logger } from "pino";
import { channels, type Bus } from "../cluster/bus.js";
import type { StoredEvent } from "../domain/index.js";

/** The longest a command's answer waits for the local readers of its commit. */
export const LOCAL_READERS_MAX_MS = 1_000;

/** The events of one committed command, in version order (all of one thread). */
export type Committed = readonly StoredEvent[];

/**
 * The feed of committed events, the one place that turns them into bus bytes and back.
 * Every reader (drain reactor, collab, `thread.events`, `agent.dispatches`) subscribes here
 * and gets decoded events; a message that is not a list of stored events is logged and
 * skipped, never handed on. The bus may lose messages: a reader keeps a way back to the log
 * (`placeIn` tells it when it needs one; `stream`'s sweep ticks remind it periodically).
 */
export class EventFeed {
  private readonly handlers = new Set<(events: Committed) => void>();
  /** Readers of this instance's own commits, which the committing command waits for (`committedHere`). */
  private readonly localReaders = new Set<(events: Committed) => Promise<void> | undefined>();
  private live: Promise<() => Promise<void>> | null = null;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly bus: Bus,
    private readonly logger: Pick<Logger, "warn">,
  ) {}

  /**
   * Puts one commit on the bus; settles once the bus took it, true, or refused it, false (and
   * logged). It never rejects: a failed publish loses nothing, the log is the truth.
   */
  publish(events: Committed): Promise<boolean> {
    return this.bus.publish(channels.events, this.encoder.encode(JSON.stringify(events))).then(
      () => true,
      (err: unknown) => {
        this.logger.warn({ err, threadId: events[0]?.threadId }, "could not publish committed events");
        return false;
      },
    );
  }

  /**
   * Calls `reader` with each commit of this instance before the command that made it
   * answers (the engine waits, up to `LOCAL_READERS_MAX_MS`), besides the bus's delivery
   * (which the reader then sees again, as already applied): collab puts a new item into
   * this instance's document, so a device connected here has it when `queue.add` answers.
   * A reader must not call the engine (the answer would wait on itself); one with nothing to
   * do returns nothing, so the common commit (no document of the thread here) waits for
   * nothing. Returns its removal.
   */
  onLocalCommit(reader: (events: Committed) => Promise<void> | undefined): () => void {
    this.localReaders.add(reader);
    return () => void this.localReaders.delete(reader);
  }

  /**
   * This instance committed `events`: its local readers take them. Resolves once they are
   * done, or after `LOCAL_READERS_MAX_MS` at most (a store that stopped answering must not
   * hold the answer of a command that is already in the log); never rejects. Nothing when
   * no reader had anything to do: the command answers at once.
   */
  committedHere(events: Committed): Promise<void> | undefined {
    const reads = [...this.localReaders].flatMap((reader) => reader(events) ?? []);
    if (reads.length === 0) return undefined;
    const read = Promise.all(
      reads.map((r) => r.catch((err: unknown) => this.logger.warn({ err, threadId: events[0]?.threadId }, "a local reader of a commit failed"))),
    );
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, LOCAL_READERS_MAX_MS)));
    return Promise.race([read.then(() => undefined), late]).finally(() => clearTimeout(timer));
  }

  /**
   * Calls `handler` with every commit published from now on (by any instance). Resolves once
   * the subscription is live, so a reader that subscribes, then reads the log, misses nothing.
   */
  async subscribe(handler: (events: Committed) => void): Promise<() => Promise<void>> {
    this.handlers.add(handler);
    try {
      this.live ??= this.bus.subscribe(channels.events, (message) => this.receive(message));
      await this.live;
    } catch (error) {
      this.handlers.delete(handler);
      this.live = null;
      throw error;
    }
    return async () => {
      this.handlers.delete(handler);
    };
  }

  /**
   * The commits `keep` selects (return the events to deliver, or none), as an async stream
   * that buffers from the moment it is live: a reader that reads its backlog meanwhile loses
   * nothing. Every `sweepMs` (if given) the stream yields an empty list, the reader's cue to
   * look at the log for whatever the bus lost. Ends when `signal` aborts or on `close()`.
   */
  async stream(options: {
    keep: (events: Committed) => readonly StoredEvent[];
    sweepMs?: number;
    signal: AbortSignal | undefined;
  }): Promise<AsyncIterable<readonly StoredEvent[]> & { close(): Promise<void> }> {
    const inbox = new EventEmitter<{ events: [readonly StoredEvent[]] }>();
    // `on` starts buffering now: every batch delivered from here on is kept.
    const arrivals = on(inbox, "events", { signal: options.signal }) as AsyncIterableIterator<[readonly StoredEvent[]]>;
    const unsubscribe = await this.subscribe((events) => {
      const kept = options.keep(events);
      if (kept.length > 0) inbox.emit("events", kept);
    });
    const sweep = options.sweepMs === undefined ? undefined : setInterval(() => inbox.emit("events", []), options.sweepMs);
    const close = async () => {
      clearInterval(sweep);
      await unsubscribe();
      await arrivals.return?.();
    };
    return {
      close,
      async *[Symbol.asyncIterator]() {
        for await (const [events] of arrivals) yield events;
      },
    };
  }

  /** Stops delivering and leaves the bus's channel; the bus itself is closed by its owner. */
  async close(): Promise<void> {
    this.handlers.clear();
    const live = this.live;
    this.live = null;
    const unsubscribe = await live?.catch(() => null);
    await unsubscribe?.();
  }

  private receive(message: Uint8Array): void {
    let events: StoredEvent[];
    try {
      events = decode(this.decoder.decode(message));
    } catch (err) {
      // Not ours to crash on: every reader has a way back to the log for what it carried.
      return this.logger.warn({ err }, "skipped an unreadable message on the events channel");
    }
    for (const handler of this.handlers) {
      try {
        handler(events);
      } catch (err) {
        // One reader's failure must not keep the commit from the others.
        this.logger.warn({ err, threadId: events[0]?.threadId }, "an events reader failed");
      }
    }
  }
}

/** A bus message's events, checked for the fields every reader relies on. */
function decode(text: string): StoredEvent[] {
  const events: unknown = JSON.parse(text);
  if (!Array.isArray(events)) throw new Error("not a list of events");
  for (const e of events as Record<string, unknown>[]) {
    if (
      typeof e !== "object" || e === null || typeof e.threadId !== "string" || typeof e.workspaceId !== "string" ||
      typeof e.seq !== "string" || typeof e.version !== "number" || typeof e.type !== "string" ||
      typeof e.payload !== "object" || e.payload === null
    ) {
      throw new Error("not a stored event");
    }
  }
  return events as StoredEvent[];
}

/**
 * Where a live event of a thread stands for a reader that holds the thread up to
 * `lastVersion`: already `seen`, the `next` one, or after a `gap` (events were missed:
 * read them from the log, which is the truth).
 */
export function placeIn(lastVersion: number, event: Pick<StoredEvent, "version">): "seen" | "next" | "gap" {
  if (event.version <= lastVersion) return "seen";
  return event.version === lastVersion + 1 ? "next" : "gap";
}
