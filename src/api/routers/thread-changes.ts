import type { ThreadSummary } from "../../store/types.js";
import type { ApiServices } from "../trpc.js";

/**
 * What `thread.changes` sends: the summaries of threads that changed, and the threads that
 * are gone. The first message is the whole list (`complete`: replace what you had).
 */
export interface ThreadChanges {
  complete: boolean;
  threads: ThreadSummary[];
  removed: string[];
}

/** The newest threads a subscriber is kept up to date on (the board lists no more). */
const WATCHED = 200;

/**
 * The workspace's thread list, live: the list, then the summary of every thread a committed
 * event touched (counts, session, pause, title), so a thread list needs no timer. The bus
 * may lose a message: every sweep interval the list is read again and what differs from
 * what this stream last sent (by version) is sent. Not resumable: a reconnect lists again.
 */
export async function* threadChanges(services: ApiServices, workspaceId: string, signal: AbortSignal | undefined): AsyncGenerator<ThreadChanges> {
  const live = await services.engine.feed.stream({
    keep: (events) => events.filter((e) => e.workspaceId === workspaceId),
    sweepMs: services.config.sweepIntervalMs,
    signal,
  });
  /** threadId → version last sent on this stream. */
  const sent = new Map<string, number>();
  const note = (threads: ThreadSummary[]) => {
    for (const t of threads) sent.set(t.threadId, t.version);
    return threads;
  };
  try {
    const first = (await services.store.listThreads(workspaceId, null, WATCHED)).items;
    yield { complete: true, threads: note(first), removed: [] };
    for await (const events of live) {
      if (events.length === 0) {
        // The sweep: catch up on whatever the bus lost.
        const now = (await services.store.listThreads(workspaceId, null, WATCHED)).items;
        const ids = new Set(now.map((t) => t.threadId));
        const changed = now.filter((t) => sent.get(t.threadId) !== t.version);
        const removed = [...sent.keys()].filter((id) => !ids.has(id));
        for (const id of removed) sent.delete(id);
        if (changed.length > 0 || removed.length > 0) yield { complete: false, threads: note(changed), removed };
        continue;
      }
      const touched = [...new Set(events.map((e) => e.threadId))];
      const threads = await services.store.threadSummaries(workspaceId, touched);
      const present = new Set(threads.map((t) => t.threadId));
      const removed = touched.filter((id) => !present.has(id));
      for (const id of removed) sent.delete(id);
      yield { complete: false, threads: note(threads), removed };
    }
  } catch (error) {
    if (!signal?.aborted) throw error;
  } finally {
    await live.close();
  }
}
