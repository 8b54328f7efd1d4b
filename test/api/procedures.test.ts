import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";
import { connect, failure, uid, type Client } from "../support/clients.js";
import { databases } from "../support/database.js";

describe.each(databases)("user-side procedures over HTTP (%s)", (database) => {
  let server: TestServer;
  let user: Client;
  let agent: Client;

  beforeAll(async () => {
    server = await startTestServer({ database });
    user = connect(server, await server.token("user"));
    agent = connect(server, await server.token("agent"));
  });
  afterAll(async () => {
    user?.close();
    agent?.close();
    await server?.close();
  });

  const newThread = async (title = "a thread") => (await user.thread.create.mutate({ threadId: uid("t"), title })).threadId;
  const add = (threadId: string, text: string) =>
    user.queue.add.mutate({ threadId, message: { messageId: uid("m"), text } });
  const order = async (threadId: string) => (await user.thread.get.query({ threadId })).queue.items.map((i) => i.text);

  it("thread.create names a new thread, with or without a key, and thread.get shows it", async () => {
    // A key names a thread inside the workspace: the id to use is the one returned.
    const { threadId: chosen } = await user.thread.create.mutate({ threadId: uid("t"), title: "refactor" });
    expect(chosen).toMatch(/^th_/);
    const { threadId: generated } = await user.thread.create.mutate({});
    expect(generated).not.toBe(chosen);

    expect(await user.thread.get.query({ threadId: chosen })).toEqual({
      threadId: chosen,
      title: "refactor",
      version: 1,
      archived: false,
      session: { status: "unknown", activeTurnId: null, error: null, runtimeSessionId: null },
      queue: { paused: false, pauseReason: null, resumeAt: null, mode: "auto", items: [] },
    });
    expect((await user.thread.get.query({ threadId: generated })).title).toBe("");
  });

  it("thread.create retried with the same commandId and no id creates one thread", async () => {
    const workspace = uid("ws");
    const creator = connect(server, await server.token("user", workspace));
    try {
      const first = await creator.thread.create.mutate({ title: "once", commandId: "create-1" });
      expect(await creator.thread.create.mutate({ title: "once", commandId: "create-1" })).toEqual(first);
      expect((await creator.thread.list.query()).items.map((t) => t.threadId)).toEqual([first.threadId]);
    } finally {
      creator.close();
    }
  });

  it("thread.create is idempotent by key: the same key names the same thread", async () => {
    const key = uid("t");
    const { threadId } = await user.thread.create.mutate({ threadId: key, title: "a thread" });
    expect(await user.thread.create.mutate({ threadId: key, title: "a thread" })).toEqual({ threadId });
    expect((await user.thread.get.query({ threadId })).version).toBe(1);
  });

  it("thread.list pages through the workspace's threads with a cursor", async () => {
    const workspace = uid("ws");
    const lister = connect(server, await server.token("user", workspace));
    try {
      const created: string[] = [];
      for (const title of ["one", "two", "three"]) created.push((await lister.thread.create.mutate({ title })).threadId);

      const first = await lister.thread.list.query({ limit: 2 });
      expect(first.items).toHaveLength(2);
      expect(first.nextCursor).not.toBeNull();
      const second = await lister.thread.list.query({ cursor: first.nextCursor, limit: 2 });
      expect(second.items).toHaveLength(1);
      expect(second.nextCursor).toBeNull();

      const listed = [...first.items, ...second.items];
      expect(listed.map((t) => t.threadId).sort()).toEqual([...created].sort());
      expect(listed.find((t) => t.threadId === created[0])).toMatchObject({ title: "one", archived: false, queueLength: 0, version: 1 });
      expect((await lister.thread.list.query()).items).toHaveLength(3);
    } finally {
      lister.close();
    }
  });

  it("thread.archive keeps the thread readable and refuses new messages", async () => {
    const threadId = await newThread();
    expect(await user.thread.archive.mutate({ threadId })).toEqual({ version: 2 });
    expect((await user.thread.get.query({ threadId })).archived).toBe(true);
    const error = await failure(add(threadId, "too late"));
    expect(error.data).toMatchObject({ code: "CONFLICT", reason: "THREAD_ARCHIVED" });
  });

  it("thread.delete removes the thread and its queue", async () => {
    const threadId = await newThread();
    await add(threadId, "never sent");
    expect(await user.thread.delete.mutate({ threadId })).toEqual({ version: 3 });
    expect((await failure(user.thread.get.query({ threadId }))).data?.code).toBe("NOT_FOUND");
    expect((await user.thread.list.query({ limit: 200 })).items.map((t) => t.threadId)).not.toContain(threadId);
  });

  it("queue.add enqueues at the tail, and is idempotent by messageId", async () => {
    const threadId = await newThread();
    const first = await user.queue.add.mutate({
      threadId,
      message: { messageId: "m-1", text: "first", attachments: [{ name: "log.txt", mimeType: "text/plain" }] },
      options: { model: "gpt-5", mode: "agent" },
    });
    expect(first).toEqual({ queueItemId: expect.any(String), status: "pending" });
    await add(threadId, "second");

    const again = await user.queue.add.mutate({ threadId, message: { messageId: "m-1", text: "first" } });
    expect(again).toEqual(first);

    const snapshot = await user.thread.get.query({ threadId });
    expect(snapshot.version).toBe(3);
    expect(snapshot.queue.items.map((i) => i.text)).toEqual(["first", "second"]);
    expect(snapshot.queue.items[0]).toMatchObject({
      queueItemId: first.queueItemId,
      messageId: "m-1",
      attachments: [{ name: "log.txt", mimeType: "text/plain" }],
      options: { model: "gpt-5", mode: "agent" },
      status: "pending",
      failureReason: null,
      attempts: 0,
    });
    expect(Date.parse(snapshot.queue.items[0].createdAt)).not.toBeNaN();
  });

  it("queue.add of a message that already left the queue answers its fate and queues nothing", async () => {
    const threadId = await newThread();
    const message = { messageId: "gone", text: "changed my mind" };
    const { queueItemId } = await user.queue.add.mutate({ threadId, message });
    await user.queue.remove.mutate({ threadId, queueItemId });
    expect(await user.queue.add.mutate({ threadId, message })).toEqual({ queueItemId, status: "removed" });
    expect(await order(threadId)).toEqual([]);
  });

  it("queue.edit changes a pending item's text", async () => {
    const threadId = await newThread();
    const { queueItemId } = await add(threadId, "draft");
    expect(await user.queue.edit.mutate({ threadId, queueItemId, text: "final" })).toEqual({ version: 3 });
    expect(await order(threadId)).toEqual(["final"]);
  });

  it("queue.move places an item after another, or at the head with afterId null", async () => {
    const threadId = await newThread();
    const a = await add(threadId, "a");
    await add(threadId, "b");
    const c = await add(threadId, "c");

    expect(await user.queue.move.mutate({ threadId, queueItemId: c.queueItemId, afterId: null })).toEqual({ version: 5 });
    expect(await order(threadId)).toEqual(["c", "a", "b"]);
    await user.queue.move.mutate({ threadId, queueItemId: c.queueItemId, afterId: a.queueItemId });
    expect(await order(threadId)).toEqual(["a", "c", "b"]);
  });

  it("queue.remove takes an item out of the queue", async () => {
    const threadId = await newThread();
    const a = await add(threadId, "a");
    await add(threadId, "b");
    expect(await user.queue.remove.mutate({ threadId, queueItemId: a.queueItemId })).toEqual({ version: 4 });
    expect(await order(threadId)).toEqual(["b"]);
  });

  it("queue.pause and queue.resume hold and release the queue", async () => {
    const threadId = await newThread();
    expect(await user.queue.pause.mutate({ threadId })).toEqual({ version: 2 });
    expect((await user.thread.get.query({ threadId })).queue).toMatchObject({ paused: true, pauseReason: "user" });
    expect(await user.queue.resume.mutate({ threadId })).toEqual({ version: 3 });
    expect((await user.thread.get.query({ threadId })).queue).toMatchObject({ paused: false, pauseReason: null });
  });

  it("queue.sendNow dispatches a chosen item past a paused queue, and a sending item cannot be edited, moved or removed", async () => {
    const threadId = await newThread();
    await user.queue.pause.mutate({ threadId });
    await agent.agent.session.mutate({ threadId, status: "ready" });
    await add(threadId, "a");
    const b = await add(threadId, "b");

    await user.queue.sendNow.mutate({ threadId, queueItemId: b.queueItemId });
    const snapshot = await user.thread.get.query({ threadId });
    expect(snapshot.queue.items.map((i) => [i.text, i.status])).toEqual([["a", "pending"], ["b", "sending"]]);

    for (const refused of [
      () => user.queue.edit.mutate({ threadId, queueItemId: b.queueItemId, text: "changed" }),
      () => user.queue.move.mutate({ threadId, queueItemId: b.queueItemId, afterId: null }),
      () => user.queue.remove.mutate({ threadId, queueItemId: b.queueItemId }),
    ]) {
      expect((await failure(refused())).data).toMatchObject({ code: "CONFLICT", reason: "ITEM_SENDING" });
    }
    expect((await user.thread.get.query({ threadId })).version).toBe(snapshot.version);
  });

  it("queue.add with delivery steer on a ready session answers that the item is being sent", async () => {
    const threadId = await newThread();
    await agent.agent.session.mutate({ threadId, status: "ready" });
    const result = await user.queue.add.mutate({ threadId, message: { messageId: "now", text: "go" }, delivery: "steer" });
    expect(result.status).toBe("sending");
  });

  it("queue.setDelivery, queue.setMode, queue.status: unknown values are BAD_REQUEST, a refused change CONFLICT with its reason; neither changes anything", async () => {
    const threadId = await newThread();
    await user.queue.pause.mutate({ threadId });
    const messageId = uid("m");
    const { queueItemId } = await user.queue.add.mutate({ threadId, message: { messageId, text: "a" }, authorName: "Alice" });
    const before = await user.thread.get.query({ threadId });
    expect(before.queue.items[0]).toMatchObject({ delivery: "queue", author: { sub: expect.any(String), name: "Alice" } });
    for (const bad of [
      () => user.queue.setDelivery.mutate({ threadId, queueItemId, delivery: "now" as never }),
      () => user.queue.setMode.mutate({ threadId, mode: "manual" as never }),
      () => user.queue.add.mutate({ threadId, message: { messageId: uid("m"), text: "b" }, delivery: "later" as never }),
      // The author is the token's, never input.
      () => user.queue.add.mutate({ threadId, message: { messageId: uid("m"), text: "b" }, author: { sub: "someone else" } } as never),
    ]) {
      expect((await failure(bad())).data).toMatchObject({ code: "BAD_REQUEST" });
    }
    expect((await user.thread.get.query({ threadId })).version).toBe(before.version);

    expect(await user.queue.status.query({ threadId, messageId })).toEqual({ state: "queued", queueItemId, position: 1 });
    expect(await user.queue.status.query({ threadId, messageId: "never-queued" })).toEqual({ state: "unknown" });

    await agent.agent.session.mutate({ threadId, status: "ready" });
    await user.queue.setDelivery.mutate({ threadId, queueItemId, delivery: "interrupt" });
    expect(await user.queue.status.query({ threadId, messageId })).toEqual({ state: "sending", queueItemId });
    const sending = await user.thread.get.query({ threadId });
    expect((await failure(user.queue.setDelivery.mutate({ threadId, queueItemId, delivery: "queue" }))).data).toMatchObject({ code: "CONFLICT", reason: "ITEM_SENDING" });
    expect((await user.thread.get.query({ threadId })).version).toBe(sending.version);

    await user.queue.setMode.mutate({ threadId, mode: "step" });
    expect((await user.thread.get.query({ threadId })).queue.mode).toBe("step");
  });

  it("queue.retry puts a failed item back as pending and releases the failure hold", async () => {
    const threadId = await newThread();
    await agent.agent.session.mutate({ threadId, status: "ready" });
    const { queueItemId } = await user.queue.add.mutate({ threadId, message: { messageId: "x", text: "x" }, delivery: "steer" });
    await agent.agent.turnStartFailed.mutate({ threadId, queueItemId, reason: "model unavailable", retryable: false });
    const failed = await user.thread.get.query({ threadId });
    expect(failed.queue).toMatchObject({ paused: true, pauseReason: "failure" });
    expect(failed.queue.items[0]).toMatchObject({ status: "failed", failureReason: "model unavailable" });

    // Keep the drain reactor from sending it again, so the retried item stays visible.
    await agent.agent.session.mutate({ threadId, status: "stopped" });
    await user.queue.retry.mutate({ threadId, queueItemId });
    const retried = await user.thread.get.query({ threadId });
    expect(retried.queue).toMatchObject({ paused: false, pauseReason: null });
    expect(retried.queue.items[0]).toMatchObject({ queueItemId, status: "pending", failureReason: null });
  });

  it("a mutation retried with the same commandId runs once and answers the same", async () => {
    const threadId = await newThread();
    const command = { threadId, message: { messageId: uid("m"), text: "once" }, commandId: "cmd-1" };
    const first = await user.queue.add.mutate(command);
    const retry = await user.queue.add.mutate(command);
    expect(retry).toEqual(first);
    expect(await order(threadId)).toEqual(["once"]);

    expect(await user.queue.pause.mutate({ threadId, commandId: "cmd-2" })).toEqual({ version: 3 });
    expect(await user.queue.pause.mutate({ threadId, commandId: "cmd-2" })).toEqual({ version: 3 });
  });

  it("an agent reports a dispatched turn: started, then ended; the user sees the session follow", async () => {
    const threadId = await newThread();
    expect(await agent.agent.session.mutate({ threadId, status: "ready" })).toEqual({ version: 2 });
    const { queueItemId } = await user.queue.add.mutate({ threadId, message: { messageId: "go", text: "go" }, delivery: "steer" });

    await agent.agent.turnStarted.mutate({ threadId, queueItemId, turnId: "turn-1" });
    const running = await user.thread.get.query({ threadId });
    expect(running.session).toEqual({ status: "running", activeTurnId: "turn-1", error: null, runtimeSessionId: null });
    expect(running.queue.items).toEqual([]);

    await agent.agent.turnEnded.mutate({ threadId, turnId: "turn-1", outcome: "completed" });
    expect((await user.thread.get.query({ threadId })).session).toEqual({ status: "ready", activeTurnId: null, error: null, runtimeSessionId: null });
    expect((await failure(agent.agent.turnEnded.mutate({ threadId, turnId: "turn-1", outcome: "completed" }))).data).toMatchObject({
      code: "CONFLICT",
      reason: "TURN_NOT_ACTIVE",
    });
  });

  it("an admin token may act on both sides", async () => {
    const admin = connect(server, await server.token("admin"));
    try {
      const { threadId } = await admin.thread.create.mutate({ title: "admin" });
      expect(await admin.agent.session.mutate({ threadId, status: "starting" })).toEqual({ version: 2 });
      expect((await admin.thread.get.query({ threadId })).session.status).toBe("starting");
    } finally {
      admin.close();
    }
  });
});
