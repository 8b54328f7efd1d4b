import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { readDoc } from "../../src/collab/index.js";
import { ThreadDoc } from "../../src/collab/thread-doc.js";
import { WriteBehind } from "../../src/collab/write-behind.js";
import { createDocStore } from "../../src/store/doc-store.js";
import type { EventStore } from "../../src/store/types.js";
import type { TestServer } from "../support/server.js";
import { addItem, connect, converged, createThread, exec, projection, startCollabServer, synced } from "./harness.js";
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

    // Still a steer, a retried item would go past the pause again: back to a plain item first.
    await exec(server, threadId, { type: "queue.setDelivery", queueItemId: b, delivery: "queue" });
    await exec(server, threadId, { type: "queue.retry", queueItemId: b });
    view = await converged(server, threadId, [device]);
    expect(view.items[0]).toMatchObject({ id: b, status: "pending", failureReason: null, attempts: 0, delivery: "queue" });

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

  it("an add answers once its item is in the document of the instance that committed it (stored, and sent to its devices)", async () => {
    const { threadId } = await createThread(server);
    const device = connect(server, threadId, token);
    await synced([device]);
    const docStore = createDocStore(server.services.db.sql);
    for (const text of ["one", "two", "three"]) {
      const id = await addItem(server, threadId, text);
      // Read right after the answer: a device loading the thread anywhere now gets the item.
      const { update } = await docStore.load(threadId);
      const stored = new Y.Doc();
      if (update) Y.applyUpdate(stored, update);
      expect(readDoc(stored).items.find((i) => i.id === id)?.text, text).toBe(text);
    }
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

  /**
   * A replica that missed events reads them from the log and catches up. Whatever commits
   * while it does must still reach its document: either in what it read, or on the feed after.
   */
  it("an API edit committed while a replica catches up with missed events reaches its document (injected fault: the edit commits between that read and the rest of the catch-up)", async () => {
    const { services } = server;
    const { threadId, ids } = await createThread(server, ["draft"]);
    const store = services.store;
    let interleave: (() => Promise<void>) | null = null;
    const events: Pick<EventStore, "readThread"> = {
      async readThread(id, afterVersion) {
        const read = await store.readThread(id, afterVersion);
        const fault = interleave;
        interleave = null;
        await fault?.();
        return read;
      },
    };
    const docStore = createDocStore(services.db.sql);
    const writer = new WriteBehind(docStore, services.logger);
    const replica = await ThreadDoc.load(threadId, {
      engine: services.engine,
      events,
      bus: services.bus,
      lease: services.lease,
      docStore,
      writer,
      logger: services.logger,
      editCoalesceMs: 20,
      editLockMs: 3_000,
      maxAwarenessBytes: 8_192,
      instanceId: randomUUID(),
      onGone: () => {},
    });
    const unsubscribe = await services.engine.feed.subscribe((committed) => {
      const own = committed.filter((e) => e.threadId === threadId);
      if (own.length > 0) void replica.applyEvents(own).catch(() => {});
    });
    try {
      interleave = async () => void (await exec(server, threadId, { type: "queue.edit", queueItemId: ids[0], text: "final" }));
      await replica.resync("missed");
      expect((await projection(server, threadId)).items[0]?.text).toBe("final");
      await until(() => readDoc(replica.doc).items[0]?.text === "final", () => readDoc(replica.doc).items, 10_000);
    } finally {
      await unsubscribe();
      await replica.close();
    }
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
