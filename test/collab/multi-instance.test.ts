import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deferred } from "../cluster/deferred.js";
import { redisAvailable, redisUrl } from "../cluster/redis.js";
import { hasPostgres } from "../support/postgres.js";
import type { TestServer } from "../support/server.js";
import { addItem, connect, converged, createThread, exec, startInstancePair, synced, type Device } from "./harness.js";
import { until } from "../support/poll.js";

const hasRedis = await redisAvailable();

describe.runIf(hasPostgres && hasRedis)("one thread's document on two instances (PostgreSQL + Redis)", () => {
  let pair: Awaited<ReturnType<typeof startInstancePair>>;
  let a: TestServer;
  let b: TestServer;
  const devices: Device[] = [];
  const open = async (server: TestServer, threadId: string) => {
    const d = connect(server, threadId, await server.token());
    devices.push(d);
    return d;
  };

  beforeAll(async () => {
    pair = await startInstancePair(redisUrl);
    ({ a, b } = pair);
  });
  afterAll(async () => {
    for (const d of devices) d.destroy();
    await pair?.close();
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
      await until(async () => (await a.services.engine.load(threadId)).items.get(ids[0]!)!.text.startsWith("a<>"));
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
