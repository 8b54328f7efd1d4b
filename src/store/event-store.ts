import { LRUCache } from "lru-cache";
import { Id, TurnOutcome, type StoredEvent } from "../domain/index.js";
import { AppendBatcher } from "./append-batcher.js";
import { guarded } from "./errors.js";
import type { PrismaClient } from "./generated/client.js";
import { readMigrations } from "./migrate.js";
import type { SqlClient } from "./sql.js";
import type { AppendRequest, EventStore, HistoryEntry, RememberedCommand, ThreadSummary } from "./types.js";

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
 * A page of a thread's sent messages, newest first, after the cursor's (sentAt, messageId)
 * when there is one: read backwards along the Message (threadId, sentAt, messageId) index,
 * so a page costs its own rows however long the thread's history is.
 * $1 thread, $2 $3 the cursor (or nulls), $4 how many rows.
 */
export const HISTORY_PAGE_SQL = `select m."messageId", m."queueItemId", m.text, m."sentAt", m."turnId", m.attempts,
         coalesce(t.status, 'running') as outcome, t.error, t."startedAt", t."endedAt"
  from "Message" m
  left join "Turn" t on t."threadId" = m."threadId" and t."turnId" = m."turnId"
  where m."threadId" = $1
    and ($2::timestamptz is null or (m."sentAt", m."messageId") < ($2::timestamptz, $3::text))
  order by m."sentAt" desc, m."messageId" desc
  limit $4`;

/** Thread owners kept in memory (a few MB at most). */
const OWNERS_REMEMBERED = 100_000;

/** The event log and its projections on Prisma's schema, for PGlite and PostgreSQL alike. */
export class PrismaEventStore implements EventStore {
  private readonly batcher: AppendBatcher;
  private expectedMigrations: Promise<number> | null = null;
  private readonly owners = new LRUCache<string, string>({ max: OWNERS_REMEMBERED });

  constructor(
    private readonly db: { prisma: PrismaClient; sql: SqlClient },
    /** Append statements running at once: 1 on PGlite (one connection anyway), a few on PostgreSQL. */
    concurrency = 1,
  ) {
    this.batcher = new AppendBatcher(db.sql, concurrency);
  }

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

  async append(request: AppendRequest): Promise<StoredEvent[]> {
    return (await this.appendChain([request]))[0]!;
  }

  appendChain(requests: AppendRequest[]): Promise<StoredEvent[][]> {
    return this.batcher.submit(requests);
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
        `${SUMMARY_SELECT}
         where t."workspaceId" = $1 and not t.deleted
           and ($2::timestamptz is null or (t."createdAt", t.id) < ($2::timestamptz, $3::text))
         order by t."createdAt" desc, t.id desc
         limit $4`,
        [workspaceId, after?.createdAt ?? null, after?.id ?? null, limit + 1],
      );
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return { items: page.map(summaryOf), nextCursor: rows.length > limit && last ? encodeCursor(last.createdAt, last.id) : null };
    });
  }

  threadSummaries(workspaceId: string, threadIds: readonly string[]): Promise<ThreadSummary[]> {
    return guarded(async () => {
      if (threadIds.length === 0) return [];
      const rows = await this.db.sql.query<ThreadListRow>(
        `${SUMMARY_SELECT} where t."workspaceId" = $1 and not t.deleted and t.id = any($2::text[])`,
        [workspaceId, [...threadIds]],
      );
      return rows.map(summaryOf);
    });
  }

  threadVersions(threadIds: readonly string[]): Promise<Map<string, number>> {
    return guarded(async () => {
      if (threadIds.length === 0) return new Map();
      const rows = await this.db.sql.query<{ id: string; version: number }>(`select id, version from "Thread" where id = any($1::text[])`, [[...threadIds]]);
      return new Map(rows.map((r) => [r.id, r.version]));
    });
  }

  turnOutcome(threadId: string, turnId: string): Promise<TurnOutcome | null> {
    return guarded(async () => {
      const [row] = await this.db.sql.query<{ status: string }>(`select status from "Turn" where "threadId" = $1 and "turnId" = $2`, [threadId, turnId]);
      const outcome = TurnOutcome.safeParse(row?.status);
      return outcome.success ? outcome.data : null;
    });
  }

  readHistory(threadId: string, cursor: string | null, limit: number) {
    return guarded(async () => {
      const after = cursor ? decodeCursor(cursor) : null;
      const rows = await this.db.sql.query<HistoryRow>(HISTORY_PAGE_SQL, [threadId, after?.createdAt ?? null, after?.id ?? null, limit + 1]);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const items: HistoryEntry[] = page.map((r) => ({
        messageId: r.messageId,
        queueItemId: r.queueItemId,
        text: r.text,
        sentAt: r.sentAt.toISOString(),
        turnId: r.turnId,
        attempts: r.attempts,
        outcome: r.outcome,
        error: r.error,
        startedAt: r.startedAt?.toISOString() ?? null,
        endedAt: r.endedAt?.toISOString() ?? null,
      }));
      return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.sentAt, last.messageId) : null };
    });
  }

  unacknowledgedDispatches(workspaceId: string): Promise<StoredEvent[]> {
    return guarded(async () => {
      // Driven from the few items being sent (and turns asked to stop), each event looked up
      // in its own thread's log, newest first (a claim is near the end): a plain join let the
      // planner, misled by statistics a burst of adds left stale, compare every claim event
      // with every item — seconds in a thread of ten thousand items, on every agent connect
      // and every sweep.
      const rows = await this.db.sql.query<EventRow>(
        `select ${EVENT_COLUMNS} from (
           select e.* from "QueueItem" q
           join "Thread" t on t.id = q."threadId"
           cross join lateral (
             select * from "Event" e
             where e."threadId" = q."threadId" and e.type = 'queue.item-send-started' and e.payload->>'dispatchId' = q."dispatchId"
             order by e.version desc limit 1
           ) e
           where t."workspaceId" = $1 and not t.deleted and q.status = 'sending'
           union all
           select e.* from "Thread" t
           cross join lateral (
             select * from "Event" e
             where e."threadId" = t.id and e.type = 'thread.interrupt-requested' and e.payload->>'turnId' = t."activeTurnId"
             order by e.version desc limit 1
           ) e
           where t."workspaceId" = $1 and not t.deleted and t."activeTurnId" is not null
         ) e order by e.seq`,
        [workspaceId],
      );
      return rows.map(storedEvent);
    });
  }

  threadsWithWork(): Promise<string[]> {
    return guarded(async () => {
      // Grouped in SQL: Prisma's `distinct` fetches every matching item and dedupes in memory,
      // tens of thousands of rows on each sweep when queues are long.
      const rows = await this.db.prisma.queueItem.groupBy({ by: ["threadId"], where: { status: { in: ["pending", "sending"] } } });
      return rows.map((r) => r.threadId);
    });
  }

  workspaceOf(threadId: string): Promise<string | null> {
    return guarded(async () => {
      const row = await this.db.prisma.thread.findFirst({ where: { id: threadId, deleted: false }, select: { workspaceId: true } });
      return row?.workspaceId ?? null;
    });
  }

  ownerOf(threadId: string): Promise<string | null> {
    const known = this.owners.get(threadId);
    if (known !== undefined) return Promise.resolve(known);
    return guarded(async () => {
      const [row] = await this.db.sql.query<{ workspaceId: string }>(`select "workspaceId" from "Thread" where id = $1`, [threadId]);
      if (row) this.owners.set(threadId, row.workspaceId);
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

  /** Waits for appends already submitted; the database itself is closed by its owner. */
  close(): Promise<void> {
    return this.batcher.idle();
  }
}

interface ThreadListRow {
  id: string;
  title: string;
  archived: boolean;
  sessionStatus: string;
  paused: boolean;
  pauseReason: string | null;
  version: number;
  queueLength: number;
  failedCount: number;
  createdAt: Date;
  updatedAt: Date;
}

const SUMMARY_SELECT = `select t.id, t.title, t.archived, t."sessionStatus", t.paused, t."pauseReason", t.version, t."createdAt", t."updatedAt",
         (select count(*)::int from "QueueItem" q where q."threadId" = t.id) as "queueLength",
         (select count(*)::int from "QueueItem" q where q."threadId" = t.id and q.status = 'failed') as "failedCount"
  from "Thread" t`;

const summaryOf = (r: ThreadListRow): ThreadSummary => ({
  threadId: r.id,
  title: r.title,
  archived: r.archived,
  sessionStatus: r.sessionStatus,
  paused: r.paused,
  pauseReason: r.pauseReason,
  queueLength: r.queueLength,
  failedCount: r.failedCount,
  version: r.version,
  createdAt: r.createdAt.toISOString(),
  updatedAt: r.updatedAt.toISOString(),
});

interface HistoryRow {
  messageId: string;
  queueItemId: string;
  text: string;
  sentAt: Date;
  turnId: string;
  attempts: number | null;
  outcome: HistoryEntry["outcome"];
  error: string | null;
  startedAt: Date | null;
  endedAt: Date | null;
}

/** A page's last row, as (time, id): `thread.list` and `thread.history` page the same way. */
const encodeCursor = (at: Date, id: string) => Buffer.from(JSON.stringify([at.toISOString(), id])).toString("base64url");

/** What encodeCursor writes: `Date.toISOString()` of a year 1..9999 (PostgreSQL has no year 0), nothing looser. */
const ISO_INSTANT = /^(?!0000)\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * Only what encodeCursor could have written gets through: JavaScript's Date parses far more
 * than PostgreSQL's timestamptz ("1", "May 5", years past 9999), so a merely parseable date
 * would fail in the query as an internal error; an id is held to the thread-id rules.
 */
function decodeCursor(cursor: string): { createdAt: string; id: string } {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (Array.isArray(decoded) && decoded.length === 2) {
      const [createdAt, id] = decoded as unknown[];
      if (
        typeof createdAt === "string" && ISO_INSTANT.test(createdAt) && new Date(createdAt).toISOString() === createdAt &&
        Id.safeParse(id).success
      ) {
        return { createdAt, id: id as string };
      }
    }
  } catch {
    // fall through to the clear error below
  }
  throw new InvalidCursorError(cursor);
}

/** A `thread.list` cursor this store did not hand out. */
export class InvalidCursorError extends Error {
  constructor(cursor: string) {
    super(`invalid cursor: ${JSON.stringify(cursor.slice(0, 64))}`);
    this.name = "InvalidCursorError";
  }
}
