import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";
import { connect, uid, watchEvents, type Client } from "../support/clients.js";
import { databases } from "../support/database.js";

describe.each(databases)("thread.events over WebSocket (%s)", (database) => {
  let server: TestServer;
  let user: Client;

  beforeAll(async () => {
    server = await startTestServer({ database });
    user = connect(server, await server.token("user"));
  });
  afterAll(async () => {
    user?.close();
    await server?.close();
  });

  const newThread = async () => (await user.thread.create.mutate({ threadId: uid("t") })).threadId;
  const add = (threadId: string, text: string) => user.queue.add.mutate({ threadId, message: { messageId: uid("m"), text } });

  /** Consecutive versions from `from`, and ids that are the seqs, strictly increasing. */
  function expectContiguous(received: { id: string; event: { seq: string; version: number } }[], from: number) {
    expect(received.map((r) => r.event.version)).toEqual(received.map((_, i) => from + i));
    for (const [i, r] of received.entries()) {
      expect(r.id).toBe(r.event.seq);
      if (i > 0) expect(BigInt(r.id) > BigInt(received[i - 1].id)).toBe(true);
    }
  }

  it("replays the thread's log, then streams live events, each tracked by its seq", async () => {
    const threadId = await newThread();
    await add(threadId, "one");
    await add(threadId, "two");

    const events = watchEvents(user, { threadId });
    try {
      await events.count(3);
      expect(events.types()).toEqual(["thread.created", "queue.item-added", "queue.item-added"]);
      expect(events.received[1].event).toMatchObject({
        threadId,
        version: 2,
        type: "queue.item-added",
        payload: { text: "one" },
        actor: "user:user",
      });
      expect(Date.parse(events.received[0].event.createdAt)).not.toBeNaN();

      await user.queue.pause.mutate({ threadId });
      await events.count(4);
      expect(events.types()[3]).toBe("queue.paused");
      expectContiguous(events.received, 1);
    } finally {
      events.stop();
    }
  });

  it("streams only the subscribed thread", async () => {
    const watched = await newThread();
    const other = await newThread();
    const events = watchEvents(user, { threadId: watched });
    try {
      await events.count(1);
      await add(other, "elsewhere");
      await add(watched, "here");
      await events.count(2);
      expect(events.received.every((r) => r.event.threadId === watched)).toBe(true);
      expect(events.received[1].event.payload).toMatchObject({ text: "here" });
    } finally {
      events.stop();
    }
  });

  it("resumed from lastEventId, a subscription gets exactly the events it missed, then live ones", async () => {
    const threadId = await newThread();
    await add(threadId, "seen");
    const first = watchEvents(user, { threadId });
    await first.count(2);
    first.stop();
    expectContiguous(first.received, 1);
    const lastEventId = first.received[1].id;

    // Missed while away.
    await add(threadId, "missed 1");
    await user.queue.pause.mutate({ threadId });
    await add(threadId, "missed 2");

    const resumed = watchEvents(user, { threadId, lastEventId });
    try {
      await resumed.count(3);
      expect(resumed.types()).toEqual(["queue.item-added", "queue.paused", "queue.item-added"]);
      await user.queue.resume.mutate({ threadId });
      await resumed.count(4);
      expect(resumed.types()[3]).toBe("queue.resumed");
      expectContiguous(resumed.received, 3);
    } finally {
      resumed.stop();
    }
  });

  it("after the server restarts, the client reconnects by itself and resumes without gap or duplicate", async () => {
    const threadId = await newThread();
    const watcher = connect(server, await server.token("user"));
    const events = watchEvents(watcher, { threadId });
    try {
      await add(threadId, "before");
      await events.count(2);

      server = await server.restart();
      // Same port and secret: the HTTP client and the watcher's WebSocket find the new server.
      await add(threadId, "after 1");
      await add(threadId, "after 2");
      await events.count(4);
      await user.queue.pause.mutate({ threadId });
      await events.count(5);

      expect(events.types()).toEqual(["thread.created", "queue.item-added", "queue.item-added", "queue.item-added", "queue.paused"]);
      expectContiguous(events.received, 1);
    } finally {
      events.stop();
      watcher.close();
    }
  });

  it("a deleted thread's stream ends after thread.deleted", async () => {
    const threadId = await newThread();
    const events = watchEvents(user, { threadId });
    await events.count(1);
    await user.thread.delete.mutate({ threadId });
    await events.completed();
    expect(events.types()).toEqual(["thread.created", "thread.deleted"]);
  });
});
