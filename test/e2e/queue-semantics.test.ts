import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTurnqueueClient } from "../../client/index.js";
import { createTransport } from "../../client/transport.js";
import { loadConfig, type Config } from "../../src/config.js";
import { startTurnqueue } from "../../src/server.js";
import { databases, expectOneTurnAtATime, ScriptedAgent, startDrainHarness, testDrainConfig, type DrainHarness } from "./drain-harness.js";
import { eventually } from "../support/poll.js";
import { failure } from "../support/clients.js";

/**
 * The queue's rules (docs/design.md) through the real server and the agent SDK: delivery modes against a running
 * turn, step mode, the rate-limit hold, the bounded queue, authors and message fates.
 */
describe.each(databases)("queue semantics end to end (%s)", (database) => {
  let h: DrainHarness;
  beforeAll(async () => {
    h = await startDrainHarness({ drainPolicy: { ...testDrainConfig.drainPolicy!, maxQueueItems: 3 } }, database);
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  /** A thread whose first item's turn runs on the scripted agent; returns the thread, the held turn and its id. */
  async function running(texts: string[]) {
    const threadId = await h.createThread();
    await h.agent.session(threadId, "ready");
    const ids: string[] = [];
    for (const text of texts) ids.push(await h.add(threadId, text));
    const turn = await h.agent.nextTurn(threadId);
    const turnId = await turn.start();
    return { threadId, ids, turn, turnId };
  }

  const status = (threadId: string, messageId: string) => h.user.queue.status.query({ threadId, messageId });

  it("a steer goes into the running turn at once, ahead of the queue; the queue goes on after the turn", async () => {
    const { threadId, ids, turn, turnId } = await running(["first", "second"]);
    const messageId = randomUUID();
    await h.user.queue.add.mutate({ threadId, message: { messageId, text: "also check the docs" }, delivery: "steer" });
    const steer = await h.agent.nextSteer(threadId);
    expect(steer.dispatch).toMatchObject({ kind: "steer", expectedTurnId: turnId, message: { text: "also check the docs" } });
    steer.accept();
    await eventually(async () => expect(await status(threadId, messageId)).toMatchObject({ state: "sent", turnId }));
    turn.end("completed");
    const next = await h.agent.nextTurn(threadId);
    expect(next.dispatch.queueItemId).toBe(ids[1]);
    await next.start();
    expect(await status(threadId, messageId)).toMatchObject({ state: "sent", turnId, outcome: "completed" });
    expectOneTurnAtATime(await h.events(threadId));
  });

  it("an interrupt asks the runtime to stop the running turn, then goes first as a new turn once it ended, and the queue continues", async () => {
    const { threadId, ids, turn, turnId } = await running(["long task", "after it"]);
    const messageId = randomUUID();
    const { queueItemId } = await h.user.queue.add.mutate({ threadId, message: { messageId, text: "stop, do this instead" }, delivery: "interrupt" });
    // The runtime receives the interrupt dispatch for the running turn, and stops it.
    await eventually(async () => expect((await h.events(threadId)).some((e) => e.type === "thread.interrupt-requested" && e.payload.turnId === turnId)).toBe(true));
    expect(h.agent.pending(threadId)).toBe(0);
    turn.end("interrupted");
    const next = await h.agent.nextTurn(threadId);
    expect(next.dispatch).toMatchObject({ queueItemId, kind: "turn", message: { text: "stop, do this instead" } });
    const events = await h.events(threadId);
    expect(events.find((e) => e.type === "turn.ended")?.payload).toMatchObject({ turnId, outcome: "interrupted" });
    await next.start();
    next.end("completed");
    const after = await h.agent.nextTurn(threadId);
    expect(after.dispatch.queueItemId).toBe(ids[1]);
    await after.start();
  });

  it("step mode over three items: each turn's end holds the queue (step) until the user resumes", async () => {
    const threadId = await h.createThread();
    await h.user.queue.setMode.mutate({ threadId, mode: "step" });
    await h.agent.session(threadId, "ready");
    const ids = [await h.add(threadId, "one"), await h.add(threadId, "two"), await h.add(threadId, "three")];
    for (const id of ids) {
      const turn = await h.agent.nextTurn(threadId);
      expect(turn.dispatch.queueItemId).toBe(id);
      await turn.start();
      turn.end("completed");
      await eventually(async () => expect((await h.user.thread.get.query({ threadId })).queue).toMatchObject({ paused: true, pauseReason: "step", mode: "step" }));
      // Nothing goes while the step hold lasts.
      await h.reactorLooked();
      expect(h.agent.pending(threadId)).toBe(0);
      await h.user.queue.resume.mutate({ threadId });
    }
    expect((await h.user.thread.get.query({ threadId })).queue.items).toEqual([]);
  });

  it("a rate limit reported by the agent SDK (TurnStartError retryAt) holds the queue with the item still queued; a steer does not pass it, the user's resume ends it", async () => {
    const threadId = await h.createThread();
    await h.agent.session(threadId, "ready");
    const messageId = randomUUID();
    const { queueItemId } = await h.user.queue.add.mutate({ threadId, message: { messageId, text: "limited" } });
    const resumeAt = new Date(Date.now() + 3_600_000).toISOString();
    (await h.agent.nextTurn(threadId)).fail("429 Too Many Requests", true, resumeAt);
    await eventually(async () => expect((await h.user.thread.get.query({ threadId })).queue).toMatchObject({ paused: true, pauseReason: "rate-limited", resumeAt }));
    expect(await status(threadId, messageId)).toEqual({ state: "queued", queueItemId, position: 1 });
    await h.user.queue.sendNow.mutate({ threadId, queueItemId });
    await h.reactorLooked();
    expect(h.agent.pending(threadId)).toBe(0);
    await h.user.queue.resume.mutate({ threadId });
    const again = await h.agent.nextTurn(threadId);
    expect(again.dispatch).toMatchObject({ queueItemId, attempt: 1 });
    await again.start();
  });

  it("a full queue refuses one more (CONFLICT QUEUE_FULL) and changes nothing; a retried add of a queued message still answers", async () => {
    const threadId = await h.createThread();
    await h.user.queue.pause.mutate({ threadId });
    const messageId = randomUUID();
    const first = await h.user.queue.add.mutate({ threadId, message: { messageId, text: "one" } });
    await h.add(threadId, "two");
    await h.add(threadId, "three");
    const before = await h.user.thread.get.query({ threadId });
    const refused = await failure(h.user.queue.add.mutate({ threadId, message: { messageId: randomUUID(), text: "four" } }));
    expect(refused.data).toMatchObject({ code: "CONFLICT", reason: "QUEUE_FULL" });
    expect(await h.user.thread.get.query({ threadId })).toEqual(before);
    expect(await h.user.queue.add.mutate({ threadId, message: { messageId, text: "one" } })).toEqual(first);
  });

  it("authors: each item shows who queued it (the token's subject, never input) with the name the client gave, in the snapshot and the document's item", async () => {
    const threadId = await h.createThread();
    await h.user.queue.pause.mutate({ threadId });
    await h.user.queue.add.mutate({ threadId, message: { messageId: randomUUID(), text: "named" }, authorName: "Alice" });
    await h.user.queue.add.mutate({ threadId, message: { messageId: randomUUID(), text: "unnamed" } });
    const items = (await h.user.thread.get.query({ threadId })).queue.items;
    expect(items.map((i) => i.author)).toEqual([{ sub: "user", name: "Alice" }, { sub: "user" }]);
    // The board reads the live queue (the thread's Yjs document) through the SDK.
    const client = createTurnqueueClient({ url: h.server.url, token: await h.server.token("viewer") });
    const board = client.openThreadQueue(threadId);
    try {
      await board.whenSynced();
      await eventually(() =>
        expect(board.entries.map((e) => [e.text, e.authorSub, e.authorName, e.delivery])).toEqual([["named", "user", "Alice", "queue"], ["unnamed", "user", null, "queue"]]),
      );
    } finally {
      await client.close();
    }
  });

  it("queue.status through each fate: queued (place in line), sending, sent (turn, outcome), failed (reason), removed, unknown", async () => {
    const threadId = await h.createThread();
    await h.user.queue.pause.mutate({ threadId });
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    for (const [messageId, text] of [[a, "a"], [b, "b"], [c, "c"]]) await h.user.queue.add.mutate({ threadId, message: { messageId, text } });
    expect(await status(threadId, b)).toMatchObject({ state: "queued", position: 2 });
    expect(await status(threadId, "never")).toEqual({ state: "unknown" });
    const removed = (await status(threadId, c)) as { queueItemId: string };
    await h.user.queue.remove.mutate({ threadId, queueItemId: removed.queueItemId });
    expect(await status(threadId, c)).toEqual({ state: "removed", queueItemId: removed.queueItemId });

    await h.agent.session(threadId, "ready");
    await h.user.queue.resume.mutate({ threadId });
    const turn = await h.agent.nextTurn(threadId);
    expect(await status(threadId, a)).toMatchObject({ state: "sending" });
    const turnId = await turn.start();
    expect(await status(threadId, a)).toEqual({ state: "sent", queueItemId: turn.dispatch.queueItemId, turnId });
    turn.end("failed");
    await eventually(async () => expect(await status(threadId, a)).toMatchObject({ state: "sent", outcome: "failed" }));
    // The failed turn held the queue; the next start fails for good.
    await h.user.queue.resume.mutate({ threadId });
    const next = await h.agent.nextTurn(threadId);
    next.fail("model unavailable", false);
    await eventually(async () => expect(await status(threadId, b)).toMatchObject({ state: "failed", reason: "model unavailable" }));
  });
});

describe("rate-limit hold across a restart (short retryAt: the hold ends 3 s after it is set)", { timeout: 120_000 }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("the queue holds (rate-limited, resumeAt) and resumes by itself at that time, on the server started after the one that saw the limit", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-rate-limit-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const base = await loadConfig({ env: {}, flags: { dataDir, port: "0", logLevel: process.env.TEST_LOG_LEVEL ?? "silent" } });
    let config: Config = { ...base, ...testDrainConfig };
    let app = await startTurnqueue(config);
    config = { ...config, port: Number(new URL(app.url).port) };
    cleanups.push(() => app.close());
    const token = (role: "user" | "agent") => app.services.auth.issue({ sub: role, workspaceId: "local", role });
    const [userToken, agentToken] = [await token("user"), await token("agent")];
    const user = createTransport({ url: app.url, token: userToken, calls: "socket" });
    const reporter = createTransport({ url: app.url, token: agentToken, calls: "socket" });
    const { threadId } = await user.thread.create.mutate({});
    const { queueItemId } = await user.queue.add.mutate({ threadId, message: { messageId: randomUUID(), text: "waits out the limit" } });
    const resumeAt = new Date(Date.now() + 3_000).toISOString();
    await reporter.agent.session.mutate({ threadId, status: "rate-limited", retryAt: resumeAt });
    expect((await user.thread.get.query({ threadId })).queue).toMatchObject({ paused: true, pauseReason: "rate-limited", resumeAt });
    await user.close();
    await reporter.close();

    await app.close();
    app = await startTurnqueue(config);
    const agent = new ScriptedAgent(app.url, agentToken);
    cleanups.push(() => agent.close());
    // No one resumes it: the restarted server's timer ends the hold, and the item goes.
    const turn = await agent.nextTurn(threadId);
    expect(turn.dispatch.queueItemId).toBe(queueItemId);
    const events = await app.services.store.readThread(threadId, 0);
    const resumed = events.find((e) => e.type === "queue.resumed");
    expect(resumed?.actor).toBe("reactor:drain");
    expect(Date.parse(resumed!.createdAt)).toBeGreaterThanOrEqual(Date.parse(resumeAt));
  });
});
