import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initialState, replay, type DomainEvent } from "../../src/domain/index.js";
import type { Engine } from "../../src/engine/types.js";
import { HISTORY_PAGE_SQL, InvalidCursorError } from "../../src/store/event-store.js";
import { VersionConflictError, type AppendRequest } from "../../src/store/types.js";
import { add, cmd, testEngine, user } from "../engine/harness.js";
import { OPEN_TIMEOUT_MS, openTestDatabase, type TestDatabase } from "../support/database.js";
import { hasPostgres } from "../support/postgres.js";

const kinds = hasPostgres ? (["pglite", "postgres"] as const) : (["pglite"] as const);

describe.each(kinds)("event store (%s)", (kind) => {
  let t: TestDatabase;
  let engine: Engine;
  beforeAll(async () => {
    t = await openTestDatabase(kind);
    engine = testEngine(t.db.store);
  }, OPEN_TIMEOUT_MS);
  afterAll(async () => {
    await engine?.close();
    await t?.cleanup();
  });

  const create = (threadId: string, workspaceId = "w") => engine.execute(threadId, cmd({ type: "thread.create", workspaceId, title: threadId }), user);

  test("concurrent appends of many threads commit together, and the one that lost its version race alone fails", async () => {
    const threads = Array.from({ length: 12 }, (_, i) => `gc-${i}`);
    for (const id of threads) await create(id);
    await engine.execute("gc-5", add("gc-5-first"), user); // gc-5 moves on: an append decided at version 1 is stale
    const request = (threadId: string): AppendRequest => {
      const before = replay(initialState(threadId), [
        { type: "thread.created", payload: { workspaceId: "w", title: threadId }, version: 1, createdAt: "2026-01-01T00:00:00.000Z" },
      ]);
      const events: DomainEvent[] = [{ type: "queue.paused", payload: { reason: "user", resumeAt: null } }];
      const createdAt = "2026-01-01T00:00:01.000Z";
      return {
        threadId, workspaceId: "w", expectedVersion: 1, commandId: `gc-${threadId}`, fingerprint: "f", actor: "test", createdAt, events,
        before, after: replay(before, events.map((e) => ({ ...e, version: 2, createdAt }))), result: { version: 2 },
      };
    };
    const outcomes = await Promise.allSettled(threads.map((id) => t.db.store.append(request(id))));
    const failed = threads.filter((_, i) => outcomes[i]!.status === "rejected");
    expect(failed).toEqual(["gc-5"]);
    expect((outcomes[5] as PromiseRejectedResult).reason).toBeInstanceOf(VersionConflictError);
    for (const id of threads.filter((x) => x !== "gc-5")) {
      expect((await t.db.store.readThread(id, 1)).map((e) => [e.type, e.version])).toEqual([["queue.paused", 2]]);
      expect((await t.db.prisma.thread.findUnique({ where: { id } }))?.paused).toBe(true);
    }
    expect((await t.db.store.readThread("gc-5", 0)).map((e) => e.type)).toEqual(["thread.created", "queue.item-added"]);
  });

  test("readThreadSince resumes after a seq, in order, a page at a time", async () => {
    await create("since");
    for (let i = 0; i < 5; i++) await engine.execute("since", add(`since-${i}`), user);
    const all = await t.db.store.readThreadSince("since", null, 100);
    expect(all.map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6]);
    const page = await t.db.store.readThreadSince("since", all[1]!.seq, 3);
    expect(page).toEqual(all.slice(2, 5));
    expect(await t.db.store.readThreadSince("since", all.at(-1)!.seq, 10)).toEqual([]);
  });

  test("listThreads pages newest first through a workspace, without deleted threads or other workspaces", async () => {
    for (const id of ["list-a", "list-b", "list-c", "list-d"]) await create(id, "w-list");
    await create("list-other", "w-elsewhere");
    await engine.execute("list-b", add("list-b-1"), user);
    await engine.execute("list-d", cmd({ type: "thread.delete" }), user);
    const first = await t.db.store.listThreads("w-list", null, 2);
    expect(first.items.map((s) => s.threadId)).toEqual(["list-c", "list-b"]);
    expect(first.items[1]).toMatchObject({ title: "list-b", queueLength: 1, version: 2, archived: false, paused: false });
    const second = await t.db.store.listThreads("w-list", first.nextCursor, 2);
    expect(second.items.map((s) => s.threadId)).toEqual(["list-a"]);
    expect(second.nextCursor).toBeNull();
    await expect(t.db.store.listThreads("w-list", "not-a-cursor", 2)).rejects.toBeInstanceOf(InvalidCursorError);
  });

  test("workspaceOf, ownerOf, threadsWithWork and unacknowledgedDispatches answer from the projections", async () => {
    await create("work-1", "w-work");
    await create("work-2", "w-work");
    await engine.execute("work-1", add("work-1-a"), user);
    await engine.execute("work-1", add("work-1-b"), user);
    // The ready report claims the head in the same append.
    const ready = await engine.execute("work-1", cmd({ type: "agent.session", status: "ready" }), user);
    const claim = { events: ready.events.filter((e) => e.type === "queue.item-send-started") };
    expect(claim.events).toHaveLength(1);
    expect(await t.db.store.workspaceOf("work-1")).toBe("w-work");
    expect(await t.db.store.workspaceOf("nowhere")).toBeNull();
    expect(await t.db.store.ownerOf("nowhere")).toBeNull();
    expect(await t.db.store.threadsWithWork()).toContain("work-1");
    expect(await t.db.store.threadsWithWork()).not.toContain("work-2");
    expect(await t.db.store.unacknowledgedDispatches("w-work")).toEqual(claim.events);
    await engine.execute("work-1", cmd({ type: "agent.turnStarted", queueItemId: "item-work-1-a", turnId: "turn" }), user);
    expect(await t.db.store.unacknowledgedDispatches("w-work")).toEqual([]);
    await engine.execute("work-1", cmd({ type: "thread.delete" }), user);
    expect(await t.db.store.workspaceOf("work-1")).toBeNull();
    // The owner of a deleted thread stays: commands on it are refused by the engine, not here.
    expect(await t.db.store.ownerOf("work-1")).toBe("w-work");
    expect(await t.db.store.ownerOf("work-2")).toBe("w-work");
    expect(await t.db.store.threadsWithWork()).not.toContain("work-1");
    await t.db.store.ping();
  });

  test("readHistory pages a long history newest first along the (threadId, sentAt, messageId) index, sorting nothing", async () => {
    // 4,000 sent messages over four threads, written straight into the projection (a turn each would take minutes).
    await t.db.sql.exec(`
      insert into "Message" ("threadId", "messageId", "queueItemId", "turnId", text, attachments, "sentAt", attempts)
      select 'long-' || (i % 4), 'm' || lpad(i::text, 4, '0'), 'q' || i, 'turn' || i, 'text ' || i, '[]',
             timestamptz '2026-01-01' + (i / 8) * interval '1 second', 1 + i % 3
      from generate_series(1, 4000) i;
      analyze "Message";`);
    const first = await t.db.store.readHistory("long-1", null, 3);
    expect(first.items.map((e) => [e.messageId, e.attempts])).toEqual([["m3997", 2], ["m3993", 1], ["m3989", 3]]);
    const second = await t.db.store.readHistory("long-1", first.nextCursor, 2);
    expect(second.items.map((e) => e.messageId)).toEqual(["m3985", "m3981"]);

    const plan = async (cursor: [string, string] | [null, null]) =>
      (await t.db.sql.query<{ "QUERY PLAN": string }>(`explain ${HISTORY_PAGE_SQL}`, ["long-1", ...cursor, 21])).map((r) => r["QUERY PLAN"]).join("\n");
    for (const cursor of [[null, null], ["2026-01-01T00:04:00.000Z", "m1921"]] as const) {
      const shown = await plan([...cursor] as [string, string] | [null, null]);
      expect(shown).toContain(`Index Scan Backward using "Message_threadId_sentAt_messageId_idx"`);
      expect(shown).not.toMatch(/Sort/);
    }
  });
});
