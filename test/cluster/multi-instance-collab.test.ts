import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, hasPostgres } from "../support/postgres.js";
import type { TestServer } from "../support/server.js";
import { addItem, connect, converged, createThread, projection, startCollabServer, synced, type Device } from "../collab/harness.js";
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
    const view = await converged(a, threadId, group);
    expect(await projection(b, threadId)).toEqual(view);
    expect([...view.items[0]!.text].sort().join("")).toBe([..."<>" + typed.join("")].sort().join(""));
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
