import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { QUEUE_ITEM_COLUMNS, queueItemRow, THREAD_COLUMNS, threadRow } from "../../src/store/projections.js";
import { rebuildProjections } from "../../src/store/rebuild.js";
import { OPEN_TIMEOUT_MS, openTestDatabase, type TestDatabase } from "../support/database.js";
import { hasPostgres } from "../support/postgres.js";
import { manualClock, testEngine } from "../engine/harness.js";
import { playMixedHistory } from "./history.js";
import type { Database } from "../../src/store/database.js";

const kinds = hasPostgres ? (["pglite", "postgres"] as const) : (["pglite"] as const);

/** Every projection row, in a stable order decided here (never by database collation). */
async function projections(db: Database) {
  const byKey = <T>(rows: T[], key: (r: T) => string) => rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return {
    threads: byKey(await db.prisma.thread.findMany(), (r) => r.id),
    items: byKey(await db.prisma.queueItem.findMany(), (r) => r.id),
    turns: byKey(await db.prisma.turn.findMany(), (r) => `${r.threadId}\u0000${r.turnId}`),
    messages: byKey(await db.prisma.message.findMany(), (r) => `${r.threadId}\u0000${r.messageId}`),
  };
}

describe.each(kinds)("rebuilding projections from the log (%s)", (kind) => {
  let t: TestDatabase;
  let live: Awaited<ReturnType<typeof projections>>;

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    const clock = manualClock();
    const engine = testEngine(t.db.store, { now: clock.now });
    await playMixedHistory(engine, clock.advance);
    await engine.close();
    live = await projections(t.db);
  }, OPEN_TIMEOUT_MS);
  afterAll(async () => t?.cleanup());

  test("after a mixed history the rebuilt projections equal the live ones exactly", async () => {
    // The history really exercised every table and status.
    expect(live.threads.map((r) => [r.id, r.archived, r.deleted])).toEqual([
      ["A", false, false], ["B", true, false], ["C", false, true], ["D", false, false],
    ]);
    expect(new Set(live.items.map((i) => i.status))).toEqual(new Set(["pending", "failed"]));
    expect(live.items.some((i) => i.threadId === "C")).toBe(false);
    expect(live.turns.map((r) => [r.turnId, r.status])).toEqual([
      ["turn-1", "completed"], ["turn-2", "interrupted"], ["turn-b", "running"], ["turn-d", "running"],
    ]);
    expect(live.messages.map((m) => [m.messageId, m.attempts])).toEqual([["msg-A2", 1], ["msg-A5", 1], ["msg-A6", 1], ["msg-B2", 2], ["msg-D1", 1]]);

    const stats = await rebuildProjections(t.db);
    expect(stats.threads).toBe(4);
    expect(await projections(t.db)).toEqual(live);
  });

  test("every Thread and QueueItem column holds what the thread's state says, and the store writes every column", async () => {
    const columnsOf = async (table: string) =>
      (await t.db.sql.query<{ name: string }>(`select column_name as name from information_schema.columns where table_name = $1`, [table]))
        .map((c) => c.name)
        .sort();
    // A column the mapping misses would stay null forever; a mapped field without a column would be dropped.
    expect(await columnsOf("Thread")).toEqual(Object.keys(THREAD_COLUMNS).sort());
    expect(await columnsOf("QueueItem")).toEqual([...QUEUE_ITEM_COLUMNS, "threadId"].sort());

    const plain = (row: object) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v]));
    const engine = testEngine(t.db.store);
    try {
      for (const thread of live.threads) {
        const state = await engine.load(thread.id);
        expect(plain(thread)).toEqual(threadRow(state));
        const items = live.items.filter((i) => i.threadId === thread.id).map(plain);
        expect(items).toEqual([...state.items.values()].map((i) => queueItemRow(thread.id, i)).sort((a, b) => (a.id < b.id ? -1 : 1)));
      }
    } finally {
      await engine.close();
    }
  });

  test("rebuild restores projections that were damaged", async () => {
    await t.db.prisma.queueItem.deleteMany({ where: { threadId: "A" } });
    await t.db.prisma.thread.update({ where: { id: "B" }, data: { archived: false, title: "tampered" } });
    await t.db.prisma.message.deleteMany({});
    expect(await projections(t.db)).not.toEqual(live);

    await rebuildProjections(t.db);
    expect(await projections(t.db)).toEqual(live);
  });
});
