import { tracked } from "@trpc/server";
import type { StoredEvent } from "../domain/index.js";
import { placeIn } from "../engine/feed.js";
import { toTRPCError } from "./errors.js";
import type { ApiServices } from "./trpc.js";

/** The public event (docs/contract.md), as `thread.events` delivers it (the payload stays typed by `type`). */
export type ThreadEvent = StoredEvent extends infer E
  ? E extends StoredEvent
    ? Pick<E, "seq" | "threadId" | "version" | "type" | "payload" | "actor" | "createdAt">
    : never
  : never;

const view = (e: StoredEvent): ThreadEvent =>
  ({ seq: e.seq, threadId: e.threadId, version: e.version, type: e.type, payload: e.payload, actor: e.actor, createdAt: e.createdAt }) as ThreadEvent;

const PAGE = 500;

/**
 * One thread's events, `tracked` by seq: the log after `lastEventId` (from the start when
 * absent), then live ones, with no gap and no duplicate. The feed's stream is live BEFORE
 * the log is read, so nothing committed in between is missed; live events already read from
 * the log are skipped by seq. The bus may lose messages, so a live event that does not
 * follow the last delivered version sends us back to the log, which is the truth; and the
 * stream's sweep sends us there every sweep interval, so even a lost last event arrives, late.
 */
export async function* threadEvents(services: ApiServices, threadId: string, lastEventId: string | null, signal: AbortSignal | undefined) {
  const live = await services.engine.feed.stream({
    keep: (events) => events.filter((e) => e.threadId === threadId),
    sweepMs: services.config.sweepIntervalMs,
    signal,
  });

  let lastSeq = lastEventId === null ? null : BigInt(lastEventId);
  let lastVersion: number | null = null;
  // Nothing follows a deletion: the stream ends there so clients stop waiting.
  let deleted = false;
  const isNew = (e: StoredEvent) => lastSeq === null || BigInt(e.seq) > lastSeq;
  const deliver = (e: StoredEvent) => {
    lastSeq = BigInt(e.seq);
    lastVersion = e.version;
    deleted ||= e.type === "thread.deleted";
    return tracked(e.seq, view(e));
  };
  async function* fromLog() {
    for (;;) {
      const page = await services.store.readThreadSince(threadId, lastSeq === null ? null : String(lastSeq), PAGE);
      for (const e of page) yield deliver(e);
      if (page.length < PAGE) return;
    }
  }

  try {
    yield* fromLog();
    if (deleted) return;
    for await (const events of live) {
      // An empty batch is the sweep: whatever the bus lost is in the log.
      if (events.length === 0) yield* fromLog();
      for (const e of events) {
        if (deleted || !isNew(e)) continue;
        if (lastVersion !== null && placeIn(lastVersion, e) === "next") yield deliver(e);
        else yield* fromLog();
      }
      if (deleted) return;
    }
  } catch (error) {
    // Errors inside a running stream bypass the procedure's middlewares: map them here.
    if (!signal?.aborted) throw toTRPCError(error) ?? error;
  } finally {
    await live.close();
  }
}
