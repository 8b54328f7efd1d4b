import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Command } from "../../src/domain/index.js";
import { OPEN_TIMEOUT_MS, openTestDatabase, type TestDatabase } from "../support/database.js";
import { hasPostgres } from "../support/postgres.js";
import { add, cmd, testEngine } from "./harness.js";

const kinds = hasPostgres ? (["pglite", "postgres"] as const) : (["pglite"] as const);

/**
 * A queue.add whose text PostgreSQL cannot store. The domain's schema refuses it at every
 * door now, so it is injected here, below the schema (engine.execute takes parsed commands),
 * as the fault of a value that got past validation.
 */
const poisoned = (i: string | number): Command => ({ ...add(i), message: { messageId: `msg-${i}`, text: "NUL \u0000 here", attachments: [] } }) as Command;

describe.each(kinds)("one command the database refuses fails alone (%s)", (kind) => {
  let t: TestDatabase;
  let n = 0;

  beforeAll(async () => {
    t = await openTestDatabase(kind);
  }, OPEN_TIMEOUT_MS);
  afterAll(async () => {
    await t?.cleanup();
  });

  const stored = async (threadId: string) => (await t.db.prisma.event.findMany({ where: { threadId, type: "queue.item-added" } })).length;

  test("29 valid commands of several users grouped on one thread with 1 command injected below the schema: the 29 are stored", async () => {
    const engine = testEngine(t.db.store);
    const threadId = `${kind}-poison-${++n}`;
    await engine.execute(threadId, cmd({ type: "thread.create", workspaceId: "w" }), { actor: "user:owner" });
    // Submitted in one tick, so the engine decides and appends them as one chain.
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) => engine.execute(threadId, i === 13 ? poisoned(i) : add(i), { actor: `user:u${i % 5}` })),
    );
    expect(results.map((r) => r.status)).toEqual(Array.from({ length: 30 }, (_, i) => (i === 13 ? "rejected" : "fulfilled")));
    expect(await stored(threadId)).toBe(29);
    const state = await engine.load(threadId);
    expect([...state.items.keys()]).toHaveLength(29);
    expect(state.version).toBe(30);
    await engine.close();
  });

  test("29 valid commands on 29 threads grouped by the store with 1 command injected below the schema: the 29 are stored", async () => {
    const engine = testEngine(t.db.store);
    // Item ids are unique across threads (the API derives them from the thread): fresh ones here.
    const threads = Array.from({ length: 30 }, () => `${kind}-poison-${++n}`);
    await Promise.all(threads.map((threadId) => engine.execute(threadId, cmd({ type: "thread.create", workspaceId: "w" }), { actor: "user:owner" })));
    const results = await Promise.allSettled(threads.map((threadId, i) => engine.execute(threadId, i === 7 ? poisoned(`${n}-${i}`) : add(`${n}-${i}`), { actor: `user:u${i}` })));
    expect(results.map((r) => r.status)).toEqual(threads.map((_, i) => (i === 7 ? "rejected" : "fulfilled")));
    for (const [i, threadId] of threads.entries()) expect(await stored(threadId)).toBe(i === 7 ? 0 : 1);
    await engine.close();
  });
});
