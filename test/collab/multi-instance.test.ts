import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../src/services.js";
import { redisAvailable, redisUrl } from "../cluster/redis.js";
import { createTestDatabase, hasPostgres } from "../support/postgres.js";
import type { TestServer } from "../support/server.js";
import { connect, converged, createThread, exec, startCollabServer, synced, until, type Device } from "./harness.js";

const hasRedis = await redisAvailable();

describe.runIf(hasPostgres && hasRedis)("one thread's document on two instances (PostgreSQL + Redis)", () => {
  let database: { url: string; drop: () => Promise<void> };
  let a: TestServer;
  let b: TestServer;
  const devices: Device[] = [];
  const open = async (server: TestServer, threadId: string) => {
    const d = connect(server, threadId, await server.token());
    devices.push(d);
    return d;
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    const shared: Partial<Config> = { databaseUrl: database.url, redisUrl, secret: randomBytes(32).toString("base64url") };
    a = await startCollabServer({ config: shared });
    b = await startCollabServer({ config: shared });
  });
  afterAll(async () => {
    for (const d of devices) d.destroy();
    await a?.close();
    await b?.close();
    await database?.drop();
  });

  it("devices on both instances typing and reordering at once end identical and equal to the log", async () => {
    const { threadId, ids } = await createThread(a, ["one", "two", "three"]);
    const group = [await open(a, threadId), await open(a, threadId), await open(b, threadId), await open(b, threadId)];
    await synced(group);
    for (let round = 0; round < 8; round++) {
      group.forEach((d, k) => d.text(ids[0]).insert(k % 2 ? d.text(ids[0]).length : 0, String(k)));
      if (round % 2) await new Promise((r) => setImmediate(r));
    }
    group[1].item(ids[2]).set("position", "Zz");
    group[3].item(ids[1]).set("position", "a5");
    const view = await converged(a, threadId, group);
    expect([...view.items.find((i) => i.id === ids[0])!.text].sort().join("")).toBe([..."one" + "0123".repeat(8)].sort().join(""));
    expect(view.items.map((i) => i.id)).toEqual([ids[2], ids[0], ids[1]]);
    expect(await converged(b, threadId, group)).toEqual(view);
  });

  it("an API edit while both instances hold the document is written once, not once per instance", async () => {
    const { threadId, ids } = await createThread(a, ["short"]);
    const group = [await open(a, threadId), await open(b, threadId)];
    await synced(group);
    // A burst of edits from both sides, so each instance sees events while the other's writes are in flight.
    let text = "short";
    const edits: Promise<unknown>[] = [];
    for (let k = 0; k < 12; k++) {
      text += ` +${k}`;
      edits.push(exec(k % 2 ? a : b, threadId, { type: "queue.edit", queueItemId: ids[0], text }));
    }
    await Promise.all(edits);
    const view = await converged(a, threadId, group);
    // Edits from two instances commit in either order; the log's last one wins, undoubled.
    expect(view.items[0].text).toMatch(/^short( \+\d+)+$/);
    const parts = view.items[0].text.split(" ").slice(1);
    expect(new Set(parts).size).toBe(parts.length);
  });

  it("awareness reaches devices on the other instance and is not stored", async () => {
    const { threadId } = await createThread(a, ["x"]);
    const [onA, onB] = [await open(a, threadId), await open(b, threadId)];
    await synced([onA, onB]);
    onA.provider.awareness.setLocalStateField("user", { name: "ann", editing: "x" });
    await until(() => [...onB.provider.awareness.getStates().values()].some((s) => (s.user as { name?: string } | undefined)?.name === "ann"));
    const rows = await a.services.db.sql.query<{ update: Uint8Array }>(`select "update" from "DocUpdate" where "threadId" = $1`, [threadId]);
    expect(rows.every((r) => !Buffer.from(r.update).toString("latin1").includes("ann"))).toBe(true);
  });
});
