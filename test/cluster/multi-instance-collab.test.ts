import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, hasPostgres } from "../support/postgres.js";
import type { TestServer } from "../support/server.js";
import { addItem, connect, converged, createThread, startCollabServer, synced, type Device } from "../collab/harness.js";
import { deferred } from "./deferred.js";
import { redisAvailable, redisUrl, until } from "./redis.js";

const hasRedis = await redisAvailable();

describe.runIf(hasPostgres && hasRedis)("one thread's document on two instances (PostgreSQL + Redis)", () => {
  let database: { url: string; drop: () => Promise<void> };
  let a: TestServer;
  let b: TestServer;
  const devices: Device[] = [];
  const open = async (server: TestServer, threadId: string) => {
    const device = connect(server, threadId, await server.token());
    devices.push(device);
    return device;
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    const shared = { databaseUrl: database.url, redisUrl, secret: randomBytes(32).toString("base64url") };
    a = await startCollabServer({ config: shared });
    b = await startCollabServer({ config: shared });
  });
  afterAll(async () => {
    for (const device of devices) device.destroy();
    await a?.close();
    await b?.close();
    await database?.drop();
  });

  it("devices on A and on B typing into one item at once converge, and the log keeps every keystroke once", async () => {
    const { threadId, ids } = await createThread(a, ["<>"]);
    const group = [await open(a, threadId), await open(b, threadId), await open(a, threadId), await open(b, threadId)];
    await synced(group);
    const typed = group.map((_, k) => `dev${k}:0123456789;`);
    for (let round = 0; round < typed[0]!.length; round++) {
      group.forEach((device, k) => {
        const text = device.text(ids[0]!);
        text.insert(k % 2 === 0 ? 0 : text.length, typed[k]![round]!);
      });
      if (round % 3 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    // Every device, whichever instance it is on, ends on the log's document, as both instances read it.
    // Waited for on B too: an edit B read before A's last keystrokes reached it may land after
    // A's; the replica holding the merged text then commits it again, so the log ends complete.
    await converged(a, threadId, group);
    const view = await converged(b, threadId, group);
    expect([...view.items[0]!.text].sort().join("")).toBe([..."<>" + typed.join("")].sort().join(""));
  });

  it("an edit B read before A's keystroke reached it, landing after A's (fault injected: B's edit held), does not drop that keystroke from the log", async () => {
    const { threadId, ids } = await createThread(a, ["<>"]);
    const [onA, onB] = [await open(a, threadId), await open(b, threadId)];
    await synced([onA, onB]);
    const held = deferred();
    const release = deferred();
    let holding = true;
    const engine = b.services.engine;
    const execute = engine.execute.bind(engine);
    engine.execute = async (id, command, options) => {
      if (holding && id === threadId && command.type === "queue.edit") {
        holding = false;
        held.resolve();
        await release.promise;
      }
      return execute(id, command, options);
    };
    try {
      onB.text(ids[0]!).insert(2, "b");
      await held.promise;
      onA.text(ids[0]!).insert(0, "a");
      await until(async () => (await a.services.engine.load(threadId)).items[ids[0]!]!.text.startsWith("a<>"));
      release.resolve();
      await converged(a, threadId, [onA, onB]);
      const view = await converged(b, threadId, [onA, onB]);
      expect(view.items[0]!.text).toBe("a<>b");
    } finally {
      release.resolve();
      engine.execute = execute;
    }
  });

  it("an item added through instance A appears on a device connected to instance B", async () => {
    const { threadId } = await createThread(a, ["first"]);
    const onB = await open(b, threadId);
    await synced([onB]);
    const added = await addItem(a, threadId, "added on A");
    await until(() => onB.view().items.some((item) => item.id === added));
    expect(onB.view().items.map((item) => item.text)).toEqual(["first", "added on A"]);
  });

  it("presence set on a device at A is seen by a device at B, and its leaving too", async () => {
    const { threadId } = await createThread(a, ["x"]);
    const [onA, onB] = [await open(a, threadId), await open(b, threadId)];
    await synced([onA, onB]);
    onA.provider.awareness.setLocalStateField("user", { name: "alice on A" });
    const aliceId = onA.doc.clientID;
    await until(() => (onB.provider.awareness.getStates().get(aliceId) as { user?: { name: string } } | undefined)?.user?.name === "alice on A");

    onA.provider.awareness.setLocalState(null);
    await until(() => !onB.provider.awareness.getStates().has(aliceId));
  });
});
