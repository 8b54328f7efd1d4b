import type { DomainEvent, StoredEvent } from "../domain/index.js";
import type { Database } from "./database.js";
import { guarded, uniqueViolation } from "./errors.js";
import { readMigrations } from "./migrate.js";
import { projectionChanges, type ProjectedEvent, type ProjectionChanges } from "./projections.js";
import type { Sql } from "./sql.js";
import {
  VersionConflictError,
  type AppendRequest, type EventStore, type RememberedCommand, type ThreadSummary,
} from "./types.js";

export interface EventRow {
  seq: string;
  threadId: string;
  workspaceId: string;
  version: number;
  type: string;
  payload: unknown;
  commandId: string;
  actor: string;
  createdAt: Date;
}

export const EVENT_COLUMNS = `seq::text as seq, "threadId", "workspaceId", version, type, payload, "commandId", actor, "createdAt"`;

export const storedEvent = (r: EventRow): StoredEvent =>
  ({
    type: r.type,
    payload: r.payload,
    seq: r.seq,
    threadId: r.threadId,
    workspaceId: r.workspaceId,
    version: r.version,
    commandId: r.commandId,
    actor: r.actor,
    createdAt: r.createdAt.toISOString(),
  }) as StoredEvent;

/**
 * One statement writes a whole append: the events, the command's memory and every
 * projection row, as data-modifying CTEs over JSON record sets. A single statement is
 * atomic on its own, costs one round trip, and its text never changes (PostgreSQL plans it
 * once). A unique violation on (threadId, version) aborts all of it: a version conflict.
 */
const APPEND_SQL = `
with ev as (
  insert into "Event" ("threadId", "workspaceId", version, type, payload, "commandId", actor, "createdAt")
  select x."threadId", x."workspaceId", x.version, x.type, x.payload, x."commandId", x.actor, x."createdAt"
  from jsonb_populate_recordset(null::"Event", $1::jsonb) x
  returning seq, version
), cr as (
  insert into "CommandResult" select * from jsonb_populate_recordset(null::"CommandResult", $2::jsonb)
), th as (
  insert into "Thread" select * from jsonb_populate_record(null::"Thread", $3::jsonb)
  on conflict (id) do update set
    "workspaceId" = excluded."workspaceId", title = excluded.title, version = excluded.version,
    archived = excluded.archived, deleted = excluded.deleted, "sessionStatus" = excluded."sessionStatus",
    "sessionError" = excluded."sessionError", "activeTurnId" = excluded."activeTurnId", paused = excluded.paused,
    "pauseReason" = excluded."pauseReason", "createdAt" = excluded."createdAt", "updatedAt" = excluded."updatedAt"
), qi as (
  insert into "QueueItem" select * from jsonb_populate_recordset(null::"QueueItem", $4::jsonb)
), qu as (
  update "QueueItem" q set
    "messageId" = x."messageId", text = x.text, attachments = x.attachments, options = x.options,
    status = x.status, "failureReason" = x."failureReason", position = x.position, attempts = x.attempts,
    "notBefore" = x."notBefore", "dispatchId" = x."dispatchId", "createdAt" = x."createdAt", "updatedAt" = x."updatedAt"
  from jsonb_populate_recordset(null::"QueueItem", $5::jsonb) x
  where q.id = x.id and q."threadId" = x."threadId"
), qd as (
  delete from "QueueItem" where "threadId" = $6 and id in (select jsonb_array_elements_text($7::jsonb))
), ts as (
  insert into "Turn" select * from jsonb_populate_recordset(null::"Turn", $8::jsonb)
  on conflict ("threadId", "turnId") do update set
    "queueItemId" = excluded."queueItemId", status = excluded.status, error = excluded.error,
    "startedAt" = excluded."startedAt", "endedAt" = excluded."endedAt"
), te as (
  update "Turn" t set status = x.status, error = x.error, "endedAt" = x."endedAt"
  from jsonb_populate_recordset(null::"Turn", $9::jsonb) x
  where t."threadId" = $6 and t."turnId" = x."turnId"
), ms as (
  insert into "Message" select * from jsonb_populate_recordset(null::"Message", $10::jsonb)
  on conflict ("threadId", "messageId") do nothing
)
select seq::text as seq, version from ev`;

/** The event log and its projections on Prisma's schema, for PGlite and PostgreSQL alike. */
export class PrismaEventStore implements EventStore {
  private readonly inFlight = new Set<Promise<unknown>>();
  private expectedMigrations: Promise<number> | null = null;

  constructor(private readonly db: Pick<Database, "prisma" | "sql">) {}

  readThread(threadId: string, afterVersion: number): Promise<StoredEvent[]> {
    return guarded(async () => {
      const rows = await this.db.sql.query<EventRow>(
        `select ${EVENT_COLUMNS} from "Event" where "threadId" = $1 and version > $2 order by version`,
        [threadId, afterVersion],
      );
      return rows.map(storedEvent);
    });
  }

  readThreadSince(threadId: string, afterSeq: string | null, limit: number): Promise<StoredEvent[]> {
    return guarded(async () => {
      const rows = await this.db.sql.query<EventRow>(
        `select ${EVENT_COLUMNS} from "Event" where "threadId" = $1 and seq > $2::bigint order by "Event".seq limit $3`,
        [threadId, afterSeq ?? "0", limit],
      );
      return rows.map(storedEvent);
    });
  }

  append(request: AppendRequest): Promise<StoredEvent[]> {
    const running = guarded(() => writeAppend(this.db.sql, request));
    this.inFlight.add(running);
    const forget = () => this.inFlight.delete(running);
    running.then(forget, forget);
    return running;
  }

  findCommand(threadId: string, commandId: string): Promise<RememberedCommand | null> {
    return guarded(async () => {
      const [row] = await this.db.sql.query<RememberedCommand>(
        `select fingerprint, result from "CommandResult" where "threadId" = $1 and "commandId" = $2`,
        [threadId, commandId],
      );
      return row ?? null;
    });
  }

  listThreads(workspaceId: string, cursor: string | null, limit: number) {
    return guarded(async () => {
      const after = cursor ? decodeCursor(cursor) : null;
      // Newest first; the cursor is the (createdAt, id) of the last thread of the page.
      const rows = await this.db.sql.query<ThreadListRow>(
        `select t.id, t.title, t.archived, t."sessionStatus", t.paused, t.version, t."createdAt", t."updatedAt",
                (select count(*)::int from "QueueItem" q where q."threadId" = t.id) as "queueLength"
         from "Thread" t
         where t."workspaceId" = $1 and not t.deleted
           and ($2::timestamptz is null or (t."createdAt", t.id) < ($2::timestamptz, $3::text))
         order by t."createdAt" desc, t.id desc
         limit $4`,
        [workspaceId, after?.createdAt ?? null, after?.id ?? null, limit + 1],
      );
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const items: ThreadSummary[] = page.map((r) => ({
        threadId: r.id,
        title: r.title,
        archived: r.archived,
        sessionStatus: r.sessionStatus,
        paused: r.paused,
        queueLength: r.queueLength,
        version: r.version,
        createdAt: r.createdAt.toISOString(),
        updatedAt: r.updatedAt.toISOString(),
      }));
      return { items, nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
    });
  }

  unacknowledgedDispatches(workspaceId: string): Promise<StoredEvent[]> {
    return guarded(async () => {
      const rows = await this.db.sql.query<EventRow>(
        `select ${EVENT_COLUMNS} from (
           select e.* from "QueueItem" q
           join "Thread" t on t.id = q."threadId"
           join "Event" e on e."threadId" = q."threadId" and e.type = 'queue.item-send-started'
                          and e.payload->>'dispatchId' = q."dispatchId"
           where t."workspaceId" = $1 and not t.deleted and q.status = 'sending'
         ) e order by e.seq`,
        [workspaceId],
      );
      return rows.map(storedEvent);
    });
  }

  threadsWithWork(): Promise<string[]> {
    return guarded(async () => {
      const rows = await this.db.prisma.queueItem.findMany({
        where: { status: { in: ["pending", "sending"] } },
        select: { threadId: true },
        distinct: ["threadId"],
      });
      return rows.map((r) => r.threadId);
    });
  }

  workspaceOf(threadId: string): Promise<string | null> {
    return guarded(async () => {
      const row = await this.db.prisma.thread.findFirst({ where: { id: threadId, deleted: false }, select: { workspaceId: true } });
      return row?.workspaceId ?? null;
    });
  }

  ping(): Promise<void> {
    return guarded(async () => {
      this.expectedMigrations ??= readMigrations().then((m) => m.length);
      const [row] = await this.db.sql.query<{ n: number }>(
        `select count(*)::int as n from "_prisma_migrations" where finished_at is not null and rolled_back_at is null`,
      );
      const expected = await this.expectedMigrations;
      if ((row?.n ?? 0) < expected) throw new Error(`database has ${row?.n ?? 0} of ${expected} migrations applied`);
    });
  }

  /** Waits for appends already running; the database itself is closed by its owner. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }
}

interface ThreadListRow {
  id: string;
  title: string;
  archived: boolean;
  sessionStatus: string;
  paused: boolean;
  version: number;
  queueLength: number;
  createdAt: Date;
  updatedAt: Date;
}

const encodeCursor = (r: ThreadListRow) => Buffer.from(JSON.stringify([r.createdAt.toISOString(), r.id])).toString("base64url");

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown[];
    if (typeof createdAt === "string" && typeof id === "string" && !Number.isNaN(Date.parse(createdAt))) return { createdAt, id };
  } catch {
    // fall through to the clear error below
  }
  throw new InvalidCursorError(cursor);
}

/** A `thread.list` cursor this store did not hand out. */
export class InvalidCursorError extends Error {
  constructor(cursor: string) {
    super(`invalid cursor: ${cursor.slice(0, 64)}`);
    this.name = "InvalidCursorError";
  }
}

/** The rows of one append, in the shapes APPEND_SQL reads. */
export async function writeAppend(sql: Sql, request: AppendRequest): Promise<StoredEvent[]> {
  const { threadId, workspaceId, expectedVersion, commandId, actor, createdAt } = request;
  const events = request.events.map((e: DomainEvent, i) => ({
    threadId, workspaceId, version: expectedVersion + i + 1, type: e.type, payload: e.payload, commandId, actor, createdAt,
  }));
  const projected: ProjectedEvent[] = request.events.map((e) => ({ ...e, createdAt }));
  const command = { threadId, commandId, fingerprint: request.fingerprint, result: request.result, createdAt };
  let rows: { seq: string; version: number }[];
  try {
    rows = await runAppend(sql, events, [command], projectionChanges(request.before, request.after, projected));
  } catch (error) {
    const constraint = uniqueViolation(error);
    // The version slot is taken (another writer got there first), or the command id is:
    // either way the caller reloads and decides again (and then finds the command).
    if (constraint === "Event_threadId_version_key" || constraint === "CommandResult_pkey") {
      throw new VersionConflictError(threadId, expectedVersion);
    }
    throw error;
  }
  const seqOf = new Map(rows.map((r) => [Number(r.version), r.seq]));
  return events.map((e, i) => ({
    ...(request.events[i] as DomainEvent),
    seq: seqOf.get(e.version)!,
    threadId, workspaceId, version: e.version, commandId, actor, createdAt,
  }));
}

/** Writes projection rows alone (a rebuild): the append statement with no events. */
export async function writeProjections(sql: Sql, changes: ProjectionChanges): Promise<void> {
  await runAppend(sql, [], [], changes);
}

function runAppend(sql: Sql, events: unknown[], commands: unknown[], p: ProjectionChanges) {
  return sql.query<{ seq: string; version: number }>(APPEND_SQL, [
    JSON.stringify(events),
    JSON.stringify(commands),
    JSON.stringify(p.thread),
    JSON.stringify(p.insertItems),
    JSON.stringify(p.updateItems),
    p.thread.id,
    JSON.stringify(p.deleteItems),
    JSON.stringify(p.startTurns),
    JSON.stringify(p.endTurns),
    JSON.stringify(p.messages),
  ]);
}
