import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestServer } from "../support/server.js";
import { connect, converged, createThread, exec, projection, startCollabServer, synced } from "./harness.js";
import { eventually, until } from "../support/poll.js";
import { isEditLocked } from "../../src/domain/index.js";

describe("typed text is committed before its item is claimed or its document unloaded", () => {
  let server: TestServer;
  beforeAll(async () => {
    // A coalescing window far longer than the test: only the pre-claim flush can commit the text.
    server = await startCollabServer({ config: { editCoalesceMs: 600_000, docIdleMs: 300 } });
  });
  afterAll(() => server?.close());

  it("the agent's dispatch carries the last text the server acknowledged before the claim", async () => {
    const { threadId, ids } = await createThread(server, ["fix the bug"]);
    const [typist, watcher] = [connect(server, threadId, await server.token()), connect(server, threadId, await server.token())];
    await synced([typist, watcher]);

    typist.text(ids[0]).insert(11, " in the parser, then run the tests");
    // The watcher got it through the server: the server has acknowledged this text.
    await until(() => watcher.text(ids[0]).toString() === "fix the bug in the parser, then run the tests");
    expect((await projection(server, threadId)).items[0].text).toBe("fix the bug");

    await exec(server, threadId, { type: "agent.session", status: "ready" }, "agent:a");
    // The drain reactor claims at once: on a lone instance typing without a presence naming
    // the item takes no edit lock, and the claim's barrier commits the typed text first.
    const log = await eventually(async () => {
      const events = await server.services.store.readThread(threadId, 0);
      expect(events.map((e) => e.type)).toContain("queue.item-send-started");
      return events;
    });
    const claim = log.find((e) => e.type === "queue.item-send-started");
    expect(claim?.type === "queue.item-send-started" && claim.payload.message.text).toBe("fix the bug in the parser, then run the tests");
    const edit = log.findIndex((e) => e.type === "queue.item-edited");
    expect(edit).toBeGreaterThan(-1);
    expect(edit).toBeLessThan(log.indexOf(claim!));
    expect(log.some((e) => e.type === "queue.item-edit-locked")).toBe(false);
    await until(async () => (await projection(server, threadId)).items[0]?.status === "sending");
    typist.destroy();
    watcher.destroy();
  });

  it("typing into an item the API just claimed is undone (refused edit or direct compensation alike)", async () => {
    const { threadId, ids } = await createThread(server, ["draft"]);
    const device = connect(server, threadId, await server.token());
    await synced([device]);
    await exec(server, threadId, { type: "queue.pause" });
    await exec(server, threadId, { type: "agent.session", status: "ready" }, "agent:a");
    // Claimed through the API while the device still believes the item is pending.
    await exec(server, threadId, { type: "queue.sendNow", queueItemId: ids[0] });
    device.text(ids[0]).insert(5, " that came too late");
    await until(() => device.view().items[0]?.status === "sending" && device.text(ids[0]).toString() === "draft", () => device.view());
    expect((await projection(server, threadId)).items[0]).toMatchObject({ text: "draft", status: "sending" });
    device.destroy();
  });

  it("a document left idle is committed, stored and unloaded; reopened, it has every character once", async () => {
    const { threadId, ids } = await createThread(server, ["write the docs"]);
    const device = connect(server, threadId, await server.token());
    await synced([device]);
    device.text(ids[0]).insert(14, " for the collab endpoint");
    // Gone before the (ten-minute) coalescing window ends: the unload must commit the edit.
    await until(async () => {
      const [row] = await server.services.db.sql.query<{ n: number }>(`select count(*)::int as n from "DocUpdate" where "threadId" = $1`, [threadId]);
      return row.n > 0;
    });
    device.destroy();
    await until(async () => (await projection(server, threadId)).items[0]?.text === "write the docs for the collab endpoint");
    // Unloading folds the tail into the merged state.
    await until(async () => {
      const rows = await server.services.db.sql.query(`select 1 from "DocState" where "threadId" = $1`, [threadId]);
      const tail = await server.services.db.sql.query(`select 1 from "DocUpdate" where "threadId" = $1`, [threadId]);
      return rows.length === 1 && tail.length === 0;
    });

    const again = connect(server, threadId, await server.token());
    await synced([again]);
    const view = await converged(server, threadId, [again]);
    expect(view.items.map((i) => i.text)).toEqual(["write the docs for the collab endpoint"]);
    again.destroy();
  });
});

describe("a turn's end that claims the next item in its own decision", () => {
  let server: TestServer;
  beforeAll(async () => {
    // Edit locks lapse soon; the coalescing window outlasts the test (the lock's end or the barrier commits the text).
    server = await startCollabServer({ config: { editCoalesceMs: 600_000, editLockMs: 100 } });
  });
  afterAll(() => server?.close());

  it("claims it with the text typed into it and acknowledged while the turn ran, committed before the claim", async () => {
    const { threadId, ids } = await createThread(server, ["first", "second"]);
    // The ready report claims "first" in its own decision; its turn runs, so "second" waits.
    await exec(server, threadId, { type: "agent.session", status: "ready" }, "agent:a");
    await exec(server, threadId, { type: "agent.turnStarted", queueItemId: ids[0], turnId: "turn-1" }, "agent:a");
    const [typist, watcher] = [connect(server, threadId, await server.token()), connect(server, threadId, await server.token())];
    await synced([typist, watcher]);
    typist.text(ids[1]).insert(6, ", with the typed words");
    await until(() => watcher.text(ids[1]).toString() === "second, with the typed words");
    // The typing's edit lock ends, so nothing but the turn holds the item back.
    await until(async () => !isEditLocked((await server.services.engine.load(threadId)).items.get(ids[1])!, new Date()));

    const ended = await exec(server, threadId, { type: "agent.turnEnded", turnId: "turn-1", outcome: "completed" }, "agent:a");
    expect(ended.events.map((e) => e.type)).toEqual(["turn.ended", "queue.item-send-started"]);
    const claim = ended.events[1]!;
    expect(claim.type === "queue.item-send-started" && claim.payload).toMatchObject({ queueItemId: ids[1], message: { text: "second, with the typed words" } });
    const log = await server.services.store.readThread(threadId, 0);
    const edit = log.findLastIndex((e) => e.type === "queue.item-edited");
    expect(edit).toBeGreaterThan(-1);
    expect(edit).toBeLessThan(log.findIndex((e) => e.type === "turn.ended"));
    typist.destroy();
    watcher.destroy();
  });
});
