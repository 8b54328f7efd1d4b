import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { channels, InProcessBus } from "../../src/cluster/bus.js";
import { DomainError, type StoredEvent } from "../../src/domain/index.js";
import { CommandIdReusedError } from "../../src/engine/index.js";
import type { Engine } from "../../src/engine/types.js";
import { openDatabase, type Database } from "../../src/store/database.js";
import type { EventStore } from "../../src/store/types.js";
import { OPEN_TIMEOUT_MS, openTestDatabase, type TestDatabase } from "../support/database.js";
import { hasPostgres } from "../support/postgres.js";
import { add, cmd, testEngine, user } from "./harness.js";

const kinds = hasPostgres ? (["pglite", "postgres"] as const) : (["pglite"] as const);

describe.each(kinds)("engine (%s)", (kind) => {
  let t: TestDatabase;
  /** A second process's view: its own Database on the same PostgreSQL database (PGlite has one owner, so it shares the store). */
  let other: Database | null = null;
  let otherStore: EventStore;
  let n = 0;
  const fresh = async (engine: Engine, workspaceId = "w") => {
    const threadId = `${kind}-thread-${++n}`;
    await engine.execute(threadId, cmd({ type: "thread.create", workspaceId }), user);
    return threadId;
  };
  const log = async (threadId: string) =>
    t.db.prisma.event.findMany({ where: { threadId }, orderBy: { version: "asc" } });

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    if (t.url) other = await openDatabase({ databaseUrl: t.url, dataDir: "unused" });
    otherStore = other?.store ?? t.db.store;
  }, OPEN_TIMEOUT_MS);
  afterAll(async () => {
    await other?.close();
    await t?.cleanup();
  });

  test("commands append gapless versions and write the projections in the same step", async () => {
    const engine = testEngine(t.db.store);
    const threadId = await fresh(engine);
    const r1 = await engine.execute(threadId, add(`${threadId}-1`, "first"), user);
    const r2 = await engine.execute(threadId, add(`${threadId}-2`, "second"), user);
    await engine.execute(threadId, cmd({ type: "queue.edit", queueItemId: `item-${threadId}-1`, text: "first, edited" }), user);
    expect([r1.version, r2.version]).toEqual([2, 3]);
    expect(r2.events.map((e) => [e.type, e.version, e.threadId])).toEqual([["queue.item-added", 3, threadId]]);
    expect((await log(threadId)).map((e) => e.version)).toEqual([1, 2, 3, 4]);
    const rows = await t.db.prisma.queueItem.findMany({ where: { threadId } });
    expect(rows.map((r) => r.text).sort()).toEqual(["first, edited", "second"]);
    expect((await t.db.prisma.thread.findUnique({ where: { id: threadId } }))?.version).toBe(4);
    await engine.close();
  });

  test("a refusal is thrown as the domain's error and appends nothing; a no-op appends nothing", async () => {
    const engine = testEngine(t.db.store);
    const threadId = await fresh(engine);
    await expect(engine.execute(threadId, cmd({ type: "queue.remove", queueItemId: "nope" }), user)).rejects.toMatchObject({
      name: "DomainError",
      reason: "ITEM_NOT_FOUND",
    });
    await engine.execute(threadId, cmd({ type: "thread.archive" }), user);
    const again = await engine.execute(threadId, cmd({ type: "thread.archive" }), user);
    expect(again).toMatchObject({ version: 2, events: [], replayed: false });
    await expect(engine.execute(threadId, add("late"), user)).rejects.toBeInstanceOf(DomainError);
    expect((await log(threadId)).map((e) => e.type)).toEqual(["thread.created", "thread.archived"]);
    await engine.close();
  });

  test("a retried command id returns the first result and appends nothing; reused for another command it is refused", async () => {
    const engine = testEngine(t.db.store);
    const threadId = await fresh(engine);
    const first = await engine.execute(threadId, cmd({ type: "queue.pause" }), { ...user, commandId: "c-1" });
    await engine.execute(threadId, cmd({ type: "queue.resume" }), user);
    // The retry arrives after the thread moved on: without the memory it would pause again.
    const retry = await engine.execute(threadId, cmd({ type: "queue.pause" }), { ...user, commandId: "c-1" });
    expect(retry).toMatchObject({ version: first.version, events: [], replayed: true });
    await expect(engine.execute(threadId, cmd({ type: "queue.resume" }), { ...user, commandId: "c-1" })).rejects.toBeInstanceOf(
      CommandIdReusedError,
    );
    expect((await log(threadId)).map((e) => e.type)).toEqual(["thread.created", "queue.paused", "queue.resumed"]);
    // Another process that never saw the command answers the same.
    const elsewhere = testEngine(otherStore);
    expect(await elsewhere.execute(threadId, cmd({ type: "queue.pause" }), { ...user, commandId: "c-1" })).toMatchObject({
      version: first.version,
      replayed: true,
    });
    await Promise.all([engine.close(), elsewhere.close()]);
  });

  test("the same command id sent twice at once, to two processes, runs once", async () => {
    const a = testEngine(t.db.store);
    const b = testEngine(otherStore);
    const threadId = await fresh(a);
    const pause = () => cmd({ type: "queue.pause" });
    const results = await Promise.all([
      a.execute(threadId, pause(), { ...user, commandId: "twice" }),
      b.execute(threadId, pause(), { ...user, commandId: "twice" }),
      a.execute(threadId, pause(), { ...user, commandId: "twice" }),
    ]);
    expect(new Set(results.map((r) => r.version))).toEqual(new Set([2]));
    expect(results.filter((r) => r.events.length > 0)).toHaveLength(1);
    expect((await log(threadId)).map((e) => e.type)).toEqual(["thread.created", "queue.paused"]);
    await Promise.all([a.close(), b.close()]);
  });

  test("committed events are published on the bus, after they are in the log", async () => {
    const bus = new InProcessBus();
    const engine = testEngine(t.db.store, { bus });
    const threadId = await fresh(engine);
    const published: StoredEvent[][] = [];
    const inLogWhenPublished: number[] = [];
    await bus.subscribe(channels.events, (message) => {
      const events = JSON.parse(new TextDecoder().decode(message)) as StoredEvent[];
      published.push(events);
      void log(threadId).then((rows) => inLogWhenPublished.push(rows.length));
    });
    const result = await engine.execute(threadId, add(`${threadId}-x`), user);
    await engine.execute(threadId, cmd({ type: "thread.archive" }), user);
    await engine.execute(threadId, cmd({ type: "thread.archive" }), user); // no-op: nothing published
    await expect.poll(() => inLogWhenPublished.length).toBe(2);
    expect(published[0]).toEqual(result.events);
    expect(published.map((events) => events.map((e) => e.type))).toEqual([["queue.item-added"], ["thread.archived"]]);
    expect(Math.min(...inLogWhenPublished)).toBeGreaterThanOrEqual(2);
    await engine.close();
  });

  test("an add on an idle thread whose session is ready is claimed in the same append and published as one commit", async () => {
    const bus = new InProcessBus();
    const engine = testEngine(t.db.store, { bus });
    const threadId = await fresh(engine);
    await engine.execute(threadId, cmd({ type: "agent.session", status: "ready" }), user);
    const published: string[][] = [];
    await bus.subscribe(channels.events, (message) => {
      published.push((JSON.parse(new TextDecoder().decode(message)) as StoredEvent[]).map((e) => e.type));
    });
    const result = await engine.execute(threadId, add(`${threadId}-go`), user);
    expect(result.events.map((e) => [e.type, e.version, e.actor])).toEqual([
      ["queue.item-added", 3, user.actor],
      ["queue.item-send-started", 4, user.actor],
    ]);
    await expect.poll(() => published).toEqual([["queue.item-added", "queue.item-send-started"]]);
    // The next add finds the thread busy: it only queues.
    expect((await engine.execute(threadId, add(`${threadId}-later`), user)).events.map((e) => e.type)).toEqual(["queue.item-added"]);
    await engine.close();
  });

  test("pre-claim barriers finish before a claim is decided, so the dispatch carries the flushed text", async () => {
    const engine = testEngine(t.db.store);
    const threadId = await fresh(engine);
    await engine.execute(threadId, add(`${threadId}-h`, "draft"), user);
    const flushed: string[] = [];
    const unregister = engine.addPreClaimBarrier(async (id) => {
      flushed.push(id);
      // What collab's barrier does: the coalesced edit lands on the same thread before the claim.
      await engine.execute(id, cmd({ type: "queue.edit", queueItemId: `item-${threadId}-h`, text: "final text" }), user);
    });
    // The session's ready report claims the waiting item in its own decision, after the barrier.
    const claim = await engine.execute(threadId, cmd({ type: "agent.session", status: "ready" }), user);
    expect(flushed).toEqual([threadId]);
    expect(claim.events.map((e) => e.type)).toEqual(["session.changed", "queue.item-send-started"]);
    expect(claim.events[1]).toMatchObject({ type: "queue.item-send-started", payload: { message: { text: "final text" } } });
    unregister();
    await engine.execute(threadId, cmd({ type: "queue.pause" }), user);
    expect(flushed).toEqual([threadId]);
    await engine.close();
  });

  test("a process sees what another process wrote before it refuses or ignores a command", async () => {
    const a = testEngine(t.db.store);
    const b = testEngine(otherStore);
    const threadId = await fresh(a);
    await b.load(threadId); // b caches the thread without any item
    await a.execute(threadId, add(`${threadId}-seen`, "from a"), user);
    // On b's cached state the item does not exist; the log says it does.
    const edited = await b.execute(threadId, cmd({ type: "queue.edit", queueItemId: `item-${threadId}-seen`, text: "by b" }), user);
    expect(edited.version).toBe(3);
    expect((await a.load(threadId)).items.get(`item-${threadId}-seen`)!.text).toBe("by b");
    await Promise.all([a.close(), b.close()]);
  });

  test("load with the version a reader saw on the feed: a cache older than it reads the log, one as new answers as is", async () => {
    const a = testEngine(t.db.store);
    const b = testEngine(otherStore);
    const threadId = await fresh(a);
    await b.load(threadId); // b caches version 1
    const added = await a.execute(threadId, add(`${threadId}-seen`, "from a"), user);
    // b's reader saw version 2 announced: b's cache (version 1) is not enough.
    const seen = await b.load(threadId, added.version);
    expect(seen.version).toBe(2);
    expect(seen.items.get(`item-${threadId}-seen`)?.text).toBe("from a");
    // A reader that saw only version 1 is answered from b's cache, now at version 2: never older than the log it read.
    expect((await b.load(threadId, 1)).version).toBe(2);
    await Promise.all([a.close(), b.close()]);
  });

  test("concurrent writers on one thread: one wins, the other decides again on fresh state (interleaving injected)", async () => {
    const a = testEngine(t.db.store);
    const threadId = await fresh(a);
    // b's store lets a write between b's decision and b's append: the race, made certain.
    let conflicts = 0;
    let interleave: (() => Promise<unknown>) | null = () => a.execute(threadId, add(`${threadId}-a`, "a wins"), user);
    const racing: EventStore = Object.assign(Object.create(otherStore) as EventStore, {
      async appendChain(requests: Parameters<EventStore["appendChain"]>[0]) {
        const run = interleave;
        interleave = null;
        if (run) await run();
        try {
          return await otherStore.appendChain(requests);
        } catch (error) {
          conflicts++;
          throw error;
        }
      },
    });
    const b = testEngine(racing);
    await b.load(threadId);
    const result = await b.execute(threadId, add(`${threadId}-b`, "b retries"), user);
    expect(conflicts).toBe(1);
    expect(result.version).toBe(3);
    const state = await a.load(threadId);
    // b's item was placed after a's: decided again on the state that includes a's write.
    const order = [...state.items.values()].sort((x, y) => (x.position < y.position ? -1 : 1)).map((i) => i.text);
    expect(order).toEqual(["a wins", "b retries"]);
    expect((await log(threadId)).map((e) => e.version)).toEqual([1, 2, 3]);
    await Promise.all([a.close(), b.close()]);
  });

  test("20 clients hammering one thread lose no command: every acknowledged add is in the log and the projection", async () => {
    const engines = [testEngine(t.db.store), testEngine(otherStore)];
    const threadId = await fresh(engines[0]!);
    const acknowledged: string[] = [];
    await Promise.all(
      Array.from({ length: 20 }, async (_, client) => {
        const engine = engines[client % 2]!;
        for (let k = 0; k < 8; k++) {
          const id = `${threadId}-c${client}-${k}`;
          await engine.execute(threadId, add(id, `client ${client} message ${k}`), user);
          acknowledged.push(`item-${id}`);
        }
      }),
    );
    expect(acknowledged).toHaveLength(160);
    const events = await log(threadId);
    expect(events.map((e) => e.version)).toEqual(Array.from({ length: 161 }, (_, i) => i + 1));
    const added = events.filter((e) => e.type === "queue.item-added").map((e) => (e.payload as { queueItemId: string }).queueItemId);
    expect(added.sort()).toEqual([...acknowledged].sort());
    const rows = await t.db.prisma.queueItem.findMany({ where: { threadId }, select: { id: true } });
    expect(rows.map((r) => r.id).sort()).toEqual([...acknowledged].sort());
    // Each client's own messages kept the order it sent them in.
    const state = await engines[0]!.load(threadId);
    const order = [...state.items.values()].sort((x, y) => (x.position < y.position ? -1 : x.position > y.position ? 1 : 0));
    for (let client = 0; client < 20; client++) {
      const mine = order.filter((i) => i.queueItemId.includes(`-c${client}-`)).map((i) => i.queueItemId);
      expect(mine).toEqual(Array.from({ length: 8 }, (_, k) => `item-${threadId}-c${client}-${k}`));
    }
    await Promise.all(engines.map((e) => e.close()));
  });
});
