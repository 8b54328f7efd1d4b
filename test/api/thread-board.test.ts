import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ThreadChanges } from "../../src/api/routers/thread-changes.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { until as poll } from "../support/poll.js";
import { connect, failure, uid, type Client } from "../support/clients.js";
import { databases } from "../support/database.js";

/** The procedures the web board's thread list and history read: rename, history, changes. */
describe.each(databases)("thread.rename, thread.history and thread.changes (%s)", (database) => {
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

  const newThread = async (client = user, title = "a thread") => (await client.thread.create.mutate({ threadId: uid("t"), title })).threadId;

  /** The agent takes `text` as a turn, as a runtime would: claim, start, end with `outcome`. */
  async function sendTurn(threadId: string, text: string, outcome: "completed" | "failed" | "interrupted" | null, error: string | null = null) {
    const { queueItemId } = await user.queue.add.mutate({ threadId, message: { messageId: uid("m"), text } });
    await agent.agent.session.mutate({ threadId, status: "ready", runtimeSessionId: "codex-thread-7" });
    await poll(async () => (await user.thread.get.query({ threadId })).queue.items.find((i) => i.queueItemId === queueItemId)?.status === "sending");
    const turnId = uid("turn");
    await agent.agent.turnStarted.mutate({ threadId, queueItemId, turnId });
    if (outcome) await agent.agent.turnEnded.mutate({ threadId, turnId, outcome, error });
    return { queueItemId, turnId };
  }

  it("thread.rename changes the title everywhere, is idempotent, and refuses bad input without change", async () => {
    const threadId = await newThread(user, "old name");
    const { version } = await user.thread.rename.mutate({ threadId, title: "new name" });
    expect((await user.thread.get.query({ threadId })).title).toBe("new name");
    expect(await user.thread.rename.mutate({ threadId, title: "new name" })).toEqual({ version });
    const listed = (await user.thread.list.query({ limit: 200 })).items.find((t) => t.threadId === threadId);
    expect(listed?.title).toBe("new name");

    expect((await failure(user.thread.rename.mutate({ threadId, title: "x".repeat(513) }))).data?.code).toBe("BAD_REQUEST");
    expect((await failure(user.thread.rename.mutate({ threadId: uid("missing"), title: "y" }))).data?.code).toBe("NOT_FOUND");
    const stranger = connect(server, await server.token("user", uid("ws")));
    try {
      expect((await failure(stranger.thread.rename.mutate({ threadId, title: "mine now" }))).data?.code).toBe("NOT_FOUND");
    } finally {
      stranger.close();
    }
    expect((await failure(agent.thread.rename.mutate({ threadId, title: "agent" }))).data?.code).toBe("FORBIDDEN");
    expect(await user.thread.get.query({ threadId })).toMatchObject({ title: "new name", version });
  });

  it("thread.history lists sent messages newest first with each turn's outcome, paged, and the running one", async () => {
    const threadId = await newThread();
    await sendTurn(threadId, "first", "completed");
    await sendTurn(threadId, "second", "failed", "the model crashed");
    await user.queue.resume.mutate({ threadId }); // a failed turn holds the queue
    await sendTurn(threadId, "third", null);

    const all = await user.thread.history.query({ threadId });
    expect(all.items.map((e) => [e.text, e.outcome, e.error, e.attempts])).toEqual([
      ["third", "running", null, 1],
      ["second", "failed", "the model crashed", 1],
      ["first", "completed", null, 1],
    ]);
    expect(all.items[0]!.endedAt).toBeNull();
    expect(all.items[2]!.endedAt).not.toBeNull();
    expect(all.nextCursor).toBeNull();
    expect((await user.thread.get.query({ threadId })).session).toMatchObject({ status: "running", runtimeSessionId: "codex-thread-7" });

    const first = await user.thread.history.query({ threadId, limit: 2 });
    expect(first.items.map((e) => e.text)).toEqual(["third", "second"]);
    const second = await user.thread.history.query({ threadId, limit: 2, cursor: first.nextCursor });
    expect(second.items.map((e) => e.text)).toEqual(["first"]);
    expect(second.nextCursor).toBeNull();

    expect((await failure(user.thread.history.query({ threadId, cursor: "not-a-cursor" }))).data?.code).toBe("BAD_REQUEST");
    const stranger = connect(server, await server.token("user", uid("ws")));
    try {
      expect((await failure(stranger.thread.history.query({ threadId }))).data?.code).toBe("NOT_FOUND");
    } finally {
      stranger.close();
    }
  });

  it("thread.changes lists the workspace's threads, then sends each change: counts, pause, failure, rename, delete", async () => {
    const workspace = uid("ws");
    const me = connect(server, await server.token("user", workspace));
    const got: ThreadChanges[] = [];
    try {
      const before = await newThread(me, "already there");
      const subscription = me.thread.changes.subscribe(undefined, { onData: (d) => got.push(d) });
      await poll(() => got.length > 0);
      expect(got[0]).toMatchObject({ complete: true, removed: [] });
      expect(got[0]!.threads.map((t) => t.threadId)).toEqual([before]);

      const latest = (id: string) => got.flatMap((c) => c.threads).filter((t) => t.threadId === id).at(-1);
      const threadId = await newThread(me, "watched");
      await poll(() => latest(threadId)?.title === "watched");
      await me.queue.add.mutate({ threadId, message: { messageId: "m1", text: "one" } });
      await me.queue.add.mutate({ threadId, message: { messageId: "m2", text: "two" } });
      await poll(() => latest(threadId)?.queueLength === 2);
      await me.queue.pause.mutate({ threadId });
      await poll(() => latest(threadId)?.pauseReason === "user");
      await me.thread.rename.mutate({ threadId, title: "renamed" });
      await poll(() => latest(threadId)?.title === "renamed");
      await me.thread.delete.mutate({ threadId: before });
      await poll(() => got.some((c) => c.removed.includes(before)));
      expect(got.flatMap((c) => c.threads).every((t) => t.threadId === before || t.threadId === threadId)).toBe(true);
      subscription.unsubscribe();
    } finally {
      me.close();
    }
  });
});
