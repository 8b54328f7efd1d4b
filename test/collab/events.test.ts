import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestServer } from "../support/server.js";
import { addItem, connect, converged, createThread, exec, startCollabServer, synced } from "./harness.js";
import { until } from "../support/poll.js";

describe("every committed event shows in the document", () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startCollabServer();
    token = await server.token();
  });
  afterAll(() => server?.close());

  it("serves the queue as the contract's schema, in order, to a device that joins", async () => {
    const { threadId, ids } = await createThread(server, ["first", "second"]);
    const device = connect(server, threadId, token);
    await synced([device]);
    const view = await converged(server, threadId, [device]);
    expect(view.items.map((i) => [i.id, i.text, i.status])).toEqual([
      [ids[0], "first", "pending"],
      [ids[1], "second", "pending"],
    ]);
    expect(view.meta).toMatchObject({ threadId, session: "unknown", paused: false, pauseReason: null });
    expect(device.text(ids[0]).toString()).toBe("first");
    device.destroy();
  });

  it("adds, edits, moves, pauses, claims, fails, requeues and resolves live", async () => {
    const { threadId, ids } = await createThread(server, ["a"]);
    const device = connect(server, threadId, token);
    await synced([device]);
    const b = await addItem(server, threadId, "b");
    await converged(server, threadId, [device]);
    expect(device.view().items.map((i) => i.text)).toEqual(["a", "b"]);

    await exec(server, threadId, { type: "queue.edit", queueItemId: ids[0], text: "a, edited by the API" });
    await exec(server, threadId, { type: "queue.move", queueItemId: b, to: { afterId: null } });
    await exec(server, threadId, { type: "queue.pause" });
    let view = await converged(server, threadId, [device]);
    expect(view.items.map((i) => i.text)).toEqual(["b", "a, edited by the API"]);
    expect(view.meta).toMatchObject({ paused: true, pauseReason: "user" });

    // Paused by the user, so the drain reactor leaves the queue alone until told otherwise.
    await exec(server, threadId, { type: "agent.session", status: "ready" }, "agent:a");
    await exec(server, threadId, { type: "queue.sendNow", queueItemId: b });
    view = await converged(server, threadId, [device]);
    expect(view.items[0]).toMatchObject({ id: b, status: "sending", attempts: 1 });
    expect(view.meta.session).toBe("ready");

    await exec(server, threadId, { type: "agent.turnStartFailed", queueItemId: b, reason: "model unavailable", retryable: false }, "agent:a");
    view = await converged(server, threadId, [device]);
    expect(view.items[0]).toMatchObject({ id: b, status: "failed", failureReason: "model unavailable" });

    await exec(server, threadId, { type: "queue.retry", queueItemId: b });
    view = await converged(server, threadId, [device]);
    expect(view.items[0]).toMatchObject({ id: b, status: "pending", failureReason: null, attempts: 0 });

    // Resumed, the reactor claims the head; the agent starts it and the item leaves the queue.
    await exec(server, threadId, { type: "queue.resume" });
    await until(async () => (await server.services.engine.load(threadId)).items.get(b)!.status === "sending");
    await exec(server, threadId, { type: "agent.turnStarted", queueItemId: b, turnId: "turn-1" }, "agent:a");
    view = await converged(server, threadId, [device]);
    expect(view.items.map((i) => i.id)).toEqual([ids[0]]);
    expect(view.meta).toMatchObject({ session: "running", paused: false });

    await exec(server, threadId, { type: "queue.remove", queueItemId: ids[0] });
    view = await converged(server, threadId, [device]);
    expect(view.items).toEqual([]);
    device.destroy();
  });

  it("closes the connections of a deleted thread for good", async () => {
    const { threadId } = await createThread(server, ["x"]);
    const device = connect(server, threadId, token);
    await synced([device]);
    await exec(server, threadId, { type: "thread.delete" });
    await until(() => device.closes.some((c) => c.code === 4404), () => device.closes);
    expect(device.closes.at(-1)).toEqual({ code: 4404, reason: "the thread was deleted" });
    device.destroy();
  });
});

describe("awareness", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startCollabServer();
  });
  afterAll(() => server?.close());

  it("who is editing what reaches the other devices, leaves with its device, and is never stored", async () => {
    const { threadId } = await createThread(server, ["x"]);
    const [ann, bob] = [connect(server, threadId, await server.token("user", "local", "ann")), connect(server, threadId, await server.token("user", "local", "bob"))];
    await synced([ann, bob]);
    ann.provider.awareness.setLocalStateField("user", { name: "ann", editing: "x" });
    const annOnBob = () => bob.provider.awareness.getStates().get(ann.doc.clientID) as { user?: { name: string } } | undefined;
    await until(() => annOnBob()?.user?.name === "ann");
    ann.destroy();
    await until(() => annOnBob() === undefined);
    const rows = await server.services.db.sql.query<{ update: Uint8Array }>(`select "update" from "DocUpdate" where "threadId" = $1`, [threadId]);
    expect(rows.every((r) => !Buffer.from(r.update).toString("latin1").includes("ann"))).toBe(true);
    bob.destroy();
  });
});
