import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { createDocStore, type DocStore } from "../../src/store/doc-store.js";
import type { SqlClient } from "../../src/store/sql.js";
import { openTestDatabase, type DatabaseKind, type TestDatabase } from "../support/database.js";
import { hasPostgres } from "../support/postgres.js";

/** Updates of one growing document, as a live document would emit them. */
function edits(count: number): { updates: Uint8Array[]; text: () => string } {
  const doc = new Y.Doc();
  const updates: Uint8Array[] = [];
  doc.on("update", (u: Uint8Array) => updates.push(u));
  const text = doc.getMap("items").set("q1", new Y.Map()).set("text", new Y.Text());
  for (let i = 0; i < count; i++) {
    text.insert(text.length, `w${i} `);
    if (i % 3 === 2) text.delete(0, 1);
  }
  return { updates, text: () => text.toString() };
}

const textOf = (update: Uint8Array | null) => {
  const doc = new Y.Doc();
  if (update) Y.applyUpdate(doc, update);
  return ((doc.getMap("items").get("q1") as Y.Map<unknown> | undefined)?.get("text") as Y.Text | undefined)?.toString() ?? null;
};

describe.each<DatabaseKind>(hasPostgres ? ["pglite", "postgres"] : ["pglite"])("the document store on %s", (kind) => {
  let database: TestDatabase;
  let store: DocStore;
  beforeAll(async () => {
    database = await openTestDatabase(kind);
    store = createDocStore(database.db.sql);
  });
  afterAll(() => database?.cleanup());

  it("has nothing for a thread that never had a document", async () => {
    expect(await store.load("never")).toEqual({ update: null, tail: 0 });
  });

  it("loads the merged state plus the tail, before and after compaction, with the same content", async () => {
    const { updates, text } = edits(40);
    for (const u of updates.slice(0, 25)) await store.append([{ threadId: "t1", update: u }]);
    await store.compact("t1");
    for (const u of updates.slice(25)) await store.append([{ threadId: "t1", update: u }]);
    const loaded = await store.load("t1");
    expect(loaded.tail).toBe(updates.length - 25);
    expect(textOf(loaded.update)).toBe(text());

    await store.compact("t1");
    const compacted = await store.load("t1");
    expect(compacted.tail).toBe(0);
    expect(textOf(compacted.update)).toBe(text());
  });

  it("compactions racing appends and each other lose no update", async () => {
    const { updates, text } = edits(60);
    await Promise.all([
      (async () => {
        for (const u of updates) await store.append([{ threadId: "t2", update: u }]);
      })(),
      store.compact("t2"),
      store.compact("t2"),
      (async () => {
        await new Promise((r) => setTimeout(r, 5));
        await store.compact("t2");
      })(),
    ]);
    expect(textOf((await store.load("t2")).update)).toBe(text());
    await store.compact("t2");
    expect(textOf((await store.load("t2")).update)).toBe(text());
  });

  it("a load overtaken by a compaction (injected: it commits right after the load's first read) still has every update", async () => {
    const { updates, text } = edits(30);
    for (const u of updates.slice(0, 10)) await store.append([{ threadId: "t4", update: u }]);
    await store.compact("t4");
    for (const u of updates.slice(10)) await store.append([{ threadId: "t4", update: u }]);
    // Another instance folds the tail into the merged state between whatever reads a load makes:
    // a load reading the state before and the tail after would lose the folded updates.
    const sql = database.db.sql;
    let struck = false;
    const racing: SqlClient = {
      ...sql,
      query: async <R,>(text: string, params?: unknown[]) => {
        const rows = await sql.query<R>(text, params);
        if (!struck) {
          struck = true;
          await store.compact("t4");
        }
        return rows;
      },
    };
    expect(textOf((await createDocStore(racing).load("t4")).update)).toBe(text());
    expect(struck).toBe(true);
  });

  it("removes a deleted thread's document entirely", async () => {
    const { updates } = edits(3);
    await store.append(updates.map((update) => ({ threadId: "t3", update })));
    await store.compact("t3");
    await store.append([{ threadId: "t3", update: updates[0] }, { threadId: "other", update: updates[1] }]);
    await store.remove("t3");
    expect(await store.load("t3")).toEqual({ update: null, tail: 0 });
    expect((await store.load("other")).tail).toBe(1);
  });
});
