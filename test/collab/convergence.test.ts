import { generateKeyBetween } from "fractional-indexing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import type { TestServer } from "../support/server.js";
import { addItem, connect, converged, createThread, exec, projection, startCollabServer, synced, type Device } from "./harness.js";
import { until } from "../support/poll.js";

const tick = () => new Promise((r) => setImmediate(r));

/** Moves `id` right after `afterId` (null: to the head) in this device's own view, as a UI would. */
function moveOnDevice(device: Device, id: string, afterId: string | null): void {
  const order = device.view().items.filter((i) => i.id !== id);
  const index = afterId === null ? -1 : order.findIndex((i) => i.id === afterId);
  const before = index >= 0 ? order[index].position : null;
  const after = order[index + 1]?.position ?? null;
  const position = before !== null && after !== null && before >= after ? generateKeyBetween(before, null) : generateKeyBetween(before, after);
  device.item(id).set("position", position);
}

describe("several devices on one queue converge to the log", () => {
  let server: TestServer;
  let token: string;
  const devices: Device[] = [];
  const open = (threadId: string) => {
    const d = connect(server, threadId, token);
    devices.push(d);
    return d;
  };
  beforeAll(async () => {
    server = await startCollabServer();
    token = await server.token();
  });
  afterAll(async () => {
    for (const d of devices) d.destroy();
    await server?.close();
  });

  it.each([2, 3, 5])("%i devices typing into the same item at once keep every keystroke once", async (n) => {
    const { threadId, ids } = await createThread(server, ["<>"]);
    const group = Array.from({ length: n }, () => open(threadId));
    await synced(group);
    const typed = group.map((_, k) => `device${k}:abcdefgh;`);
    for (let round = 0; round < typed[0].length; round++) {
      group.forEach((d, k) => {
        const text = d.text(ids[0]);
        // Each device types at its own spot: one at the start, one at the end, others inside.
        const at = k === 0 ? Math.min(round, text.length) : k === 1 ? text.length : Math.floor(text.length / 2);
        text.insert(at, typed[k][round]);
      });
      if (round % 3 === 0) await tick();
    }
    const view = await converged(server, threadId, group);
    const final = view.items[0].text;
    // The same characters as were typed, each exactly once: nothing lost, nothing doubled.
    expect([...final].sort().join("")).toBe([..."<>" + typed.join("")].sort().join(""));
    expect(view.items).toHaveLength(1);
  });

  it("reordering at once from three devices ends in one order, the log's", async () => {
    const { threadId, ids } = await createThread(server, ["a", "b", "c", "d", "e"]);
    const group = [open(threadId), open(threadId), open(threadId)];
    await synced(group);
    moveOnDevice(group[0], ids[4], null);
    moveOnDevice(group[1], ids[4], ids[1]);
    moveOnDevice(group[2], ids[0], ids[3]);
    moveOnDevice(group[1], ids[2], null);
    moveOnDevice(group[0], ids[1], ids[3]);
    const view = await converged(server, threadId, group);
    expect(view.items.map((i) => i.text).sort()).toEqual(["a", "b", "c", "d", "e"]);
    // Every device's list is the log's list, item for item.
    const log = (await projection(server, threadId)).items.map((i) => i.id);
    for (const d of group) expect(d.view().items.map((i) => i.id)).toEqual(log);
  });

  it("a device offline makes edits and moves, comes back, and nothing is lost or doubled", async () => {
    const { threadId, ids } = await createThread(server, ["one", "two", "three"]);
    const [online, traveller] = [open(threadId), open(threadId)];
    await synced([online, traveller]);
    traveller.provider.disconnect();
    traveller.text(ids[0]).insert(3, " (written on the plane)");
    moveOnDevice(traveller, ids[2], null);
    online.text(ids[1]).insert(0, "still ");
    online.text(ids[0]).insert(0, ">> ");
    const added = await addItem(server, threadId, "four, added while away");
    await until(async () => (await projection(server, threadId)).items.some((i) => i.text === "still two"));
    traveller.provider.connect();
    const view = await converged(server, threadId, [online, traveller]);
    expect(view.items.map((i) => i.text)).toEqual([
      "three",
      ">> one (written on the plane)",
      "still two",
      "four, added while away",
    ]);
    expect(view.items.map((i) => i.id)).toEqual([ids[2], ids[0], ids[1], added]);
  });

  it("writes only the server may make are undone, and every replica shows the log again", async () => {
    const { threadId, ids } = await createThread(server, ["pending one", "to be sent"]);
    await exec(server, threadId, { type: "queue.pause" });
    await exec(server, threadId, { type: "agent.session", status: "ready" }, "agent:a");
    await exec(server, threadId, { type: "queue.sendNow", queueItemId: ids[1] });
    const [vandal, witness] = [open(threadId), open(threadId)];
    await synced([vandal, witness]);
    const before = await projection(server, threadId);

    const items = vandal.doc.getMap<Y.Map<unknown>>("items");
    vandal.doc.transact(() => {
      vandal.item(ids[0]).set("status", "failed");
      vandal.item(ids[0]).set("attempts", 42);
      vandal.item(ids[0]).set("extra", "field");
      vandal.doc.getMap("meta").set("paused", false);
      vandal.doc.getMap("meta").set("version", 1_000);
    });
    const forged = new Y.Map<unknown>();
    forged.set("id", "forged");
    forged.set("text", new Y.Text("sneaked in"));
    forged.set("position", "a0");
    items.set("forged", forged);
    items.delete(ids[0]);
    vandal.text(ids[1]).insert(0, "changed while sending: ");
    vandal.item(ids[1]).set("position", "Zz");
    vandal.doc.transact(() => {
      vandal.item(ids[1]).set("text", new Y.Text("replaced"));
    });

    const after = await converged(server, threadId, [vandal, witness]);
    expect(after).toEqual(before);
    expect(vandal.closes).toEqual([]);
  });

  it("an invalid position key is undone; a valid one becomes a move", async () => {
    const { threadId, ids } = await createThread(server, ["x", "y"]);
    const device = open(threadId);
    await synced([device]);
    device.item(ids[1]).set("position", "not a key!");
    await converged(server, threadId, [device]);
    expect(device.view().items.map((i) => i.id)).toEqual(ids);
    moveOnDevice(device, ids[1], null);
    const view = await converged(server, threadId, [device]);
    expect(view.items.map((i) => i.id)).toEqual([ids[1], ids[0]]);
  });

  it("a server restart with devices connected: they reconnect, nothing is duplicated, editing goes on", async () => {
    const { threadId, ids } = await createThread(server, ["before restart"]);
    const group = [open(threadId), open(threadId), open(threadId)];
    await synced(group);
    group[0].text(ids[0]).insert(0, "typed ");
    moveOnDevice(group[1], ids[0], null);
    await converged(server, threadId, group);

    server = await server.restart();
    await until(() => group.every((d) => d.provider.wsconnected && d.provider.synced), () => group.map((d) => d.closes));
    expect(group[0].closes.some((c) => c.code === 1012)).toBe(true);
    group[2].text(ids[0]).insert(group[2].text(ids[0]).length, " and after");
    const second = await addItem(server, threadId, "second");
    const view = await converged(server, threadId, group);
    expect(view.items.map((i) => i.text)).toEqual(["typed before restart and after", "second"]);
    expect(view.items.map((i) => i.id)).toEqual([ids[0], second]);
  });
});
