import type { DomainEvent, StoredEvent } from "../domain/index.js";
import { projectionChanges, QUEUE_ITEM_COLUMNS, THREAD_COLUMNS, type ProjectionChanges } from "./projections.js";
import type { Sql } from "./sql.js";
import type { AppendRequest } from "./types.js";

/** `"column" = source."column", …` for every column but the keys the statement matches on. */
const assignments = (columns: readonly string[], source: string) =>
  columns
    .filter((column) => column !== "id" && column !== "threadId")
    .map((column) => `"${column}" = ${source}."${column}"`)
    .join(", ");

/**
 * The `key` of every record of the record set `param`, as an array the planner can look up
 * in an index. It estimates a record set at 100 rows whatever it holds, and joins that with
 * a scan of the whole table: every claim, start and end of a turn in a thread of ten
 * thousand items read them all. `= any(array)` makes it an index lookup.
 */
const keysOf = (param: string, key: string) => `array(select jsonb_array_elements(${param}::jsonb)->>'${key}')`;

/**
 * One statement writes whole appends (of one or many threads): the events, the commands'
 * memory and every projection row, as data-modifying CTEs over JSON record sets. A single
 * statement is atomic on its own, costs one round trip, and its text never changes. A
 * unique violation on (threadId, version) aborts all of it: a version conflict.
 */
const APPEND_SQL = `
with ev as (
  insert into "Event" ("threadId", "workspaceId", version, type, payload, "commandId", actor, "createdAt")
  select x."threadId", x."workspaceId", x.version, x.type, x.payload, x."commandId", x.actor, x."createdAt"
  from jsonb_populate_recordset(null::"Event", $1::jsonb) x
  returning seq, "threadId", version
), cr as (
  insert into "CommandResult" select * from jsonb_populate_recordset(null::"CommandResult", $2::jsonb)
), th as (
  insert into "Thread" select * from jsonb_populate_recordset(null::"Thread", $3::jsonb)
  on conflict (id) do update set ${assignments(THREAD_COLUMNS, "excluded")}
), qi as (
  insert into "QueueItem" select * from jsonb_populate_recordset(null::"QueueItem", $4::jsonb)
), qu as (
  update "QueueItem" q set ${assignments(QUEUE_ITEM_COLUMNS, "x")}
  from jsonb_populate_recordset(null::"QueueItem", $5::jsonb) x
  where q.id = x.id and q."threadId" = x."threadId" and q.id = any(${keysOf("$5", "id")})
), qd as (
  delete from "QueueItem" q using jsonb_populate_recordset(null::"QueueItem", $6::jsonb) x
  where q.id = x.id and q."threadId" = x."threadId" and q.id = any(${keysOf("$6", "id")})
), ts as (
  insert into "Turn" select * from jsonb_populate_recordset(null::"Turn", $7::jsonb)
  on conflict ("threadId", "turnId") do update set
    "queueItemId" = excluded."queueItemId", status = excluded.status, error = excluded.error,
    "startedAt" = excluded."startedAt", "endedAt" = excluded."endedAt"
), te as (
  update "Turn" t set status = x.status, error = x.error, "endedAt" = x."endedAt"
  from jsonb_populate_recordset(null::"Turn", $8::jsonb) x
  where t."threadId" = x."threadId" and t."turnId" = x."turnId" and t."turnId" = any(${keysOf("$8", "turnId")})
), ms as (
  insert into "Message" select * from jsonb_populate_recordset(null::"Message", $9::jsonb)
  on conflict ("threadId", "messageId") do nothing
)
select seq::text as seq, "threadId", version from ev`;

/** Rows of APPEND_SQL's record sets, gathered from any number of appends. */
class AppendRows {
  readonly events: Record<string, unknown>[] = [];
  readonly commands: Record<string, unknown>[] = [];
  readonly threads: unknown[] = [];
  readonly insertItems: unknown[] = [];
  readonly updateItems: unknown[] = [];
  readonly deleteItems: { id: string; threadId: string }[] = [];
  readonly startTurns: unknown[] = [];
  readonly endTurns: unknown[] = [];
  readonly messages: unknown[] = [];

  project(p: ProjectionChanges): void {
    const threadId = p.thread.id;
    this.threads.push(p.thread);
    this.insertItems.push(...p.insertItems);
    this.updateItems.push(...p.updateItems);
    this.deleteItems.push(...p.deleteItems.map((id) => ({ id, threadId })));
    this.startTurns.push(...p.startTurns);
    this.endTurns.push(...p.endTurns.map((t) => ({ ...t, threadId })));
    this.messages.push(...p.messages);
  }

  write(sql: Sql) {
    return sql.prepared<{ seq: string; threadId: string; version: number }>(
      "tq_append",
      APPEND_SQL,
      [this.events, this.commands, this.threads, this.insertItems, this.updateItems, this.deleteItems, this.startTurns, this.endTurns, this.messages].map(
        (rows) => JSON.stringify(rows),
      ),
    );
  }
}

/**
 * Writes chains of appends in one statement. A chain is one thread's consecutive appends,
 * each decided on the state the previous one leaves: all of it is written or none.
 * Returns, per chain and per append, the stored events.
 */
export async function writeChains(sql: Sql, chains: readonly (readonly AppendRequest[])[]): Promise<StoredEvent[][][]> {
  const rows = new AppendRows();
  const stored = chains.map((chain) => {
    const events = chain.map((r) =>
      r.events.map((e: DomainEvent, i) => ({
        ...e,
        seq: "",
        threadId: r.threadId,
        workspaceId: r.workspaceId,
        version: r.expectedVersion + i + 1,
        commandId: r.commandId,
        actor: r.actor,
        createdAt: r.createdAt,
      })) as StoredEvent[],
    );
    for (const r of chain) {
      rows.commands.push({ threadId: r.threadId, commandId: r.commandId, fingerprint: r.fingerprint, result: r.result, createdAt: r.createdAt });
    }
    for (const e of events.flat()) {
      const { threadId, workspaceId, version, type, payload, commandId, actor, createdAt } = e;
      rows.events.push({ threadId, workspaceId, version, type, payload, commandId, actor, createdAt });
    }
    rows.project(projectionChanges(chain[0]!.before, chain.at(-1)!.after, events.flat()));
    return events;
  });
  const seqs = new Map((await rows.write(sql)).map((r) => [`${r.threadId}\u0000${r.version}`, r.seq]));
  for (const e of stored.flat(2)) e.seq = seqs.get(`${e.threadId}\u0000${e.version}`)!;
  return stored;
}

/** Writes projection rows alone (a rebuild): the append statement with no events. */
export async function writeProjections(sql: Sql, changes: ProjectionChanges): Promise<void> {
  const rows = new AppendRows();
  rows.project(changes);
  await rows.write(sql);
}
