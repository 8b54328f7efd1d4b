import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runAgent } from "../../client/agent.js";
import type { StoredEvent } from "../../src/domain/index.js";
import { claimsIn, databases, expectOneTurnAtATime, startDrainHarness, type DrainHarness } from "./drain-harness.js";
import { eventually } from "../support/poll.js";

const versionOf = (events: StoredEvent[], match: (e: StoredEvent) => boolean) => {
  const found = events.find(match);
  if (!found) throw new Error("no such event in the log");
  return found.version;
};

/** The tRPC error a refused call rejects with, as a plain shape to match. */
const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => ({ refused: false }),
    (error: { data?: { code?: string; reason?: string | null } }) => ({ code: error.data?.code, reason: error.data?.reason }),
  );

describe.each(databases)("failures, holds, interrupts, send now and steers (real server, agent SDK) — %s", (database) => {
  let h: DrainHarness;
  const threads: string[] = [];
  beforeAll(async () => {
    h = await startDrainHarness({ drainPolicy: { maxQueueItems: 1000, maxAttempts: 3, retryBaseMs: 100, retryMaxMs: 400, dispatchTimeoutMs: 30_000 } }, database);
  });
  afterAll(() => h?.close());
  afterEach(async () => {
    for (const threadId of threads.splice(0)) expectOneTurnAtATime(await h.events(threadId));
  });
  const readyThread = async () => {
    const threadId = await h.createThread();
    threads.push(threadId);
    await h.agent.session(threadId, "ready");
    return threadId;
  };

  it("a retryable start failure is retried after its backoff, and holds the queue once attempts run out", async () => {
    const threadId = await readyThread();
    const a = await h.add(threadId, "flaky");
    const b = await h.add(threadId, "behind it");
    for (let attempt = 1; attempt <= 3; attempt++) {
      const turn = await h.agent.nextTurn(threadId);
      expect(turn.dispatch).toMatchObject({ queueItemId: a, attempt });
      turn.fail(`overloaded (${attempt})`, true);
    }
    await eventually(async () => expect((await h.state(threadId)).items.get(a)!.status).toBe("failed"));
    const state = await h.state(threadId);
    expect(state.items.get(a)).toMatchObject({ failureReason: "overloaded (3)", attempts: 3 });
    expect(state).toMatchObject({ paused: true, pauseReason: "failure" });
    expect(state.items.get(b)!.status).toBe("pending");

    const events = await h.events(threadId);
    const failures = events.filter((e) => e.type === "queue.item-send-failed");
    expect(failures.map((e) => e.payload.final)).toEqual([false, false, true]);
    const claims = claimsIn(events);
    // Each retry waited for its backoff: the next claim is recorded no earlier than retryAt.
    for (const [i, failure] of failures.slice(0, 2).entries()) {
      expect(Date.parse(claims[i + 1].createdAt)).toBeGreaterThanOrEqual(Date.parse(failure.payload.retryAt!));
    }
    await h.reactorLooked();
    expect(claimsIn(await h.events(threadId))).toHaveLength(3);
  });

  it("a permanent start failure marks the item failed and holds the queue; retry sends it again at its old place", async () => {
    const threadId = await readyThread();
    const a = await h.add(threadId, "rejected");
    const b = await h.add(threadId, "held");
    (await h.agent.nextTurn(threadId)).fail("unknown model", false);
    await eventually(async () => expect((await h.state(threadId)).pauseReason).toBe("failure"));
    const held = await h.state(threadId);
    expect(held.items.get(a)).toMatchObject({ status: "failed", failureReason: "unknown model" });
    await h.reactorLooked();
    expect(claimsIn(await h.events(threadId))).toHaveLength(1);

    await h.user.queue.retry.mutate({ threadId, queueItemId: a });
    const again = await h.agent.nextTurn(threadId);
    expect(again.dispatch.queueItemId).toBe(a);
    expect((await h.state(threadId)).paused).toBe(false);
    await again.start();
    again.end();
    expect((await h.agent.nextTurn(threadId)).dispatch.queueItemId).toBe(b);
  });

  it("a turn that ends failed holds the queue like a start failure", async () => {
    const threadId = await readyThread();
    await h.add(threadId, "crashes mid-turn");
    const b = await h.add(threadId, "held");
    const turn = await h.agent.nextTurn(threadId);
    await turn.start();
    turn.end("failed");
    await eventually(async () => expect((await h.state(threadId)).pauseReason).toBe("failure"));
    await h.reactorLooked();
    expect(claimsIn(await h.events(threadId))).toHaveLength(1);
    await h.user.queue.resume.mutate({ threadId });
    expect((await h.agent.nextTurn(threadId)).dispatch.queueItemId).toBe(b);
  });

  it("an interrupted turn pauses the queue; resume continues with the next item", async () => {
    const threadId = await readyThread();
    await h.add(threadId, "stopped by the user");
    const b = await h.add(threadId, "next");
    const turn = await h.agent.nextTurn(threadId);
    await turn.start();
    turn.end("interrupted");
    await eventually(async () => expect((await h.state(threadId)).pauseReason).toBe("interrupted"));
    await h.reactorLooked();
    expect(claimsIn(await h.events(threadId))).toHaveLength(1);

    await h.user.queue.resume.mutate({ threadId });
    const next = await h.agent.nextTurn(threadId);
    expect(next.dispatch.queueItemId).toBe(b);
    const events = await h.events(threadId);
    expect(claimsIn(events)[1].version).toBeGreaterThan(versionOf(events, (e) => e.type === "queue.resumed"));
    await next.start();
  });

  it("send now on an idle thread dispatches the chosen item at once, past the pause and the queue", async () => {
    const threadId = await readyThread();
    await h.user.queue.pause.mutate({ threadId });
    const a = await h.add(threadId, "queued first");
    const b = await h.add(threadId, "queued second");
    await h.user.queue.sendNow.mutate({ threadId, queueItemId: b });
    const turn = await h.agent.nextTurn(threadId);
    expect(turn.dispatch).toMatchObject({ queueItemId: b, kind: "turn" });
    await turn.start();
    turn.end();
    // The user's pause still holds the rest.
    await eventually(async () => expect((await h.state(threadId)).session.status).toBe("ready"));
    await h.reactorLooked();
    expect(claimsIn(await h.events(threadId))).toHaveLength(1);
    expect((await h.state(threadId)).items.get(a)!.status).toBe("pending");

    // queue.add with delivery steer: sent at once, past the pause.
    const c = await h.add(threadId, "urgent", { delivery: "steer" });
    const urgent = await h.agent.nextTurn(threadId);
    expect(urgent.dispatch.queueItemId).toBe(c);
    await urgent.start();
  });

  it("send now mid-turn is a steer into the running turn; the agent accepts it", async () => {
    const threadId = await readyThread();
    await h.add(threadId, "long task");
    const b = await h.add(threadId, "also consider X");
    const turn = await h.agent.nextTurn(threadId);
    const turnId = await turn.start();
    await h.user.queue.sendNow.mutate({ threadId, queueItemId: b });
    const steer = await h.agent.nextSteer(threadId);
    expect(steer.dispatch).toMatchObject({ queueItemId: b, kind: "steer", expectedTurnId: turnId });
    steer.accept();
    await eventually(async () => expect((await h.state(threadId)).items.get(b)).toBeUndefined());
    const events = await h.events(threadId);
    expect(events.filter((e) => e.type === "message.sent").map((e) => e.payload.queueItemId)).toContain(b);
    expect((await h.state(threadId)).session.activeTurnId).toBe(turnId);
    turn.end();
  });

  it("a rejected steer goes back to its old place as failed, with the reason", async () => {
    const threadId = await readyThread();
    await h.add(threadId, "long task");
    const b = await h.add(threadId, "second");
    const c = await h.add(threadId, "steer me");
    const turn = await h.agent.nextTurn(threadId);
    await turn.start();
    const before = (await h.state(threadId)).items.get(c)!.position;
    await h.user.queue.sendNow.mutate({ threadId, queueItemId: c });
    (await h.agent.nextSteer(threadId)).reject("the turn is finishing");
    await eventually(async () => expect((await h.state(threadId)).items.get(c)!.status).toBe("failed"));
    const snapshot = await h.user.thread.get.query({ threadId });
    expect(snapshot.queue.items.map((i) => [i.queueItemId, i.status])).toEqual([[b, "pending"], [c, "failed"]]);
    expect(snapshot.queue.items[1]).toMatchObject({ position: before, failureReason: "the turn is finishing" });
    turn.end();
  });

  it("edit, move and remove are refused while the item is being sent, and change nothing", async () => {
    const threadId = await readyThread();
    const a = await h.add(threadId, "in flight");
    const b = await h.add(threadId, "other");
    const turn = await h.agent.nextTurn(threadId);
    const version = (await h.state(threadId)).version;
    expect(await refusal(h.user.queue.edit.mutate({ threadId, queueItemId: a, text: "changed" }))).toEqual({ code: "CONFLICT", reason: "ITEM_SENDING" });
    expect(await refusal(h.user.queue.move.mutate({ threadId, queueItemId: a, afterId: b }))).toEqual({ code: "CONFLICT", reason: "ITEM_SENDING" });
    expect(await refusal(h.user.queue.remove.mutate({ threadId, queueItemId: a }))).toEqual({ code: "CONFLICT", reason: "ITEM_SENDING" });
    expect((await h.state(threadId)).version).toBe(version);
    expect((await h.state(threadId)).items.get(a)).toMatchObject({ status: "sending", text: "in flight" });
    await turn.start();
  });

  it("an archived thread never drains and refuses new items", async () => {
    const threadId = await readyThread();
    await h.user.queue.pause.mutate({ threadId });
    const a = await h.add(threadId, "left behind");
    await h.user.thread.archive.mutate({ threadId });
    await h.user.queue.resume.mutate({ threadId }).catch(() => {});
    await h.agent.session(threadId, "starting");
    await h.agent.session(threadId, "ready");
    expect(await refusal(h.add(threadId, "too late"))).toEqual({ code: "CONFLICT", reason: "THREAD_ARCHIVED" });
    await h.reactorLooked();
    expect(claimsIn(await h.events(threadId))).toHaveLength(0);
    expect((await h.state(threadId)).items.get(a)!.status).toBe("pending");
  });

  it("a deleted thread's queue is never sent, and its dispatch in flight is never redelivered", async () => {
    const threadId = await readyThread();
    const a = await h.add(threadId, "in flight");
    await h.add(threadId, "never sent");
    const turn = await h.agent.nextTurn(threadId);
    await h.user.thread.delete.mutate({ threadId });
    await expect(turn.start()).rejects.toMatchObject({ name: "ReportRefusedError" });
    await h.reactorLooked();
    expect(claimsIn(await h.events(threadId)).map((e) => e.payload.queueItemId)).toEqual([a]);

    // A runtime connecting afresh gets every unacknowledged dispatch of the workspace: none of this thread.
    const other = await h.createThread();
    const seen: string[] = [];
    const fresh = runAgent({
      url: h.server.url,
      token: await h.server.token("agent"),
      onTurn: async (t) => {
        seen.push(t.dispatch.threadId);
        await t.start();
      },
    });
    try {
      await fresh.session(other, "ready");
      await h.add(other, "proves the stream is live");
      await eventually(() => expect(seen).toContain(other));
      expect(seen).not.toContain(threadId);
    } finally {
      await fresh.close();
    }
  });
});
