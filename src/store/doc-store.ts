import * as Y from "yjs";
import { guarded } from "./errors.js";
import type { SqlClient } from "./sql.js";

/**
 * Where a thread's Yjs document lives between loads: one merged state (`DocState`) plus the
 * tail of updates appended since (`DocUpdate`), folded into the state by `compact`.
 * Appends are cheap single inserts; reading merges the two.
 */
export interface DocStore {
  /** The merged document (null when the thread never had one) and the tail length. */
  load(threadId: string): Promise<{ update: Uint8Array | null; tail: number }>;
  /** Appends updates of any threads in one statement. */
  append(rows: readonly { threadId: string; update: Uint8Array }[]): Promise<void>;
  /** Folds the tail into the merged state; safe to run from several instances at once. */
  compact(threadId: string): Promise<void>;
  remove(threadId: string): Promise<void>;
}

const bytes = (value: unknown): Uint8Array => value as Uint8Array;

export function createDocStore(sql: SqlClient): DocStore {
  return {
    load: (threadId) =>
      guarded(async () => {
        // One statement, so one snapshot: read as two, a compaction committing in between (it
        // folds the tail into the state and deletes it) would leave the state read before it
        // and the tail read after it, and the updates it folded in would be in neither.
        const rows = await sql.query<{ tail: boolean; bytes: unknown }>(
          `select false as "tail", "state" as "bytes", 0::bigint as "id" from "DocState" where "threadId" = $1
           union all
           select true, "update", "id" from "DocUpdate" where "threadId" = $1
           order by "tail", "id"`,
          [threadId],
        );
        const parts = rows.map((r) => bytes(r.bytes));
        return { update: parts.length ? Y.mergeUpdates(parts) : null, tail: rows.filter((r) => r.tail).length };
      }),

    append: (rows) =>
      guarded(async () => {
        if (rows.length === 0) return;
        const values = rows.map((_, i) => `($${2 * i + 1}, $${2 * i + 2})`).join(", ");
        await sql.query(`insert into "DocUpdate" ("threadId", "update") values ${values}`, rows.flatMap((r) => [r.threadId, r.update]));
      }),

    compact: (threadId) =>
      guarded(() =>
        sql.transaction(async (tx) => {
          // Two instances compacting one thread would each drop rows the other folded in.
          await tx.query(`select pg_advisory_xact_lock(hashtext('tq:doc:' || $1))`, [threadId]);
          const [state] = await tx.query<{ state: unknown }>(`select "state" from "DocState" where "threadId" = $1`, [threadId]);
          const tail = await tx.query<{ id: string; update: unknown }>(
            `select "id"::text as "id", "update" from "DocUpdate" where "threadId" = $1 order by "DocUpdate"."id"`,
            [threadId],
          );
          if (tail.length === 0) return;
          // Through a document rather than mergeUpdates: deleted content is garbage-collected.
          const doc = new Y.Doc();
          if (state) Y.applyUpdate(doc, bytes(state.state));
          for (const row of tail) Y.applyUpdate(doc, bytes(row.update));
          const merged = Y.encodeStateAsUpdate(doc);
          doc.destroy();
          await tx.query(
            `insert into "DocState" ("threadId", "state", "updatedAt") values ($1, $2, now())
             on conflict ("threadId") do update set "state" = excluded."state", "updatedAt" = excluded."updatedAt"`,
            [threadId, merged],
          );
          await tx.query(`delete from "DocUpdate" where "threadId" = $1 and "id" <= $2::bigint`, [threadId, tail.at(-1)!.id]);
        }),
      ),

    remove: (threadId) =>
      guarded(() =>
        sql.transaction(async (tx) => {
          await tx.query(`delete from "DocUpdate" where "threadId" = $1`, [threadId]);
          await tx.query(`delete from "DocState" where "threadId" = $1`, [threadId]);
        }),
      ),
  };
}
