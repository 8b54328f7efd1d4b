import { initialState, replay } from "../domain/index.js";
import type { Database } from "./database.js";
import { writeProjections } from "./append-statement.js";
import { EVENT_COLUMNS, storedEvent, type EventRow } from "./event-store.js";
import { guarded } from "./errors.js";
import { projectionChanges } from "./projections.js";

/** Every projection table: what rebuild empties and writes again. */
const PROJECTIONS = [`"Thread"`, `"QueueItem"`, `"Turn"`, `"Message"`];

/**
 * Rebuilds every projection from the event log, in one transaction: each thread's events
 * replayed through `evolve` give its Thread and QueueItem rows, its turn and message events
 * give Turn and Message rows. Appends wait meanwhile (the log is locked against writes), so
 * the result is the projection of one consistent log.
 */
export function rebuildProjections(db: Pick<Database, "sql" | "kind">): Promise<{ threads: number; events: number }> {
  return guarded(() =>
    db.sql.transaction(async (tx) => {
      if (db.kind === "postgres") await tx.query(`lock table "Event" in share mode`);
      await tx.exec(`delete from ${PROJECTIONS.join("; delete from ")}`);
      const threads = await tx.query<{ threadId: string }>(`select distinct "threadId" from "Event" order by "threadId"`);
      let events = 0;
      for (const { threadId } of threads) {
        const log = (
          await tx.query<EventRow>(`select ${EVENT_COLUMNS} from "Event" where "threadId" = $1 order by version`, [threadId])
        ).map(storedEvent);
        const start = initialState(threadId);
        await writeProjections(tx, projectionChanges(start, replay(start, log), log));
        events += log.length;
      }
      return { threads: threads.length, events };
    }),
  );
}
