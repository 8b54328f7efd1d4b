import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { StoredEvent } from "../../src/domain/index.js";
import { startDrainReactor } from "../../src/reactors/drain.js";
import { claimsIn, databases, expectOneTurnAtATime, startDrainHarness, type DrainHarness } from "./drain-harness.js";
import { eventually } from "../support/poll.js";

/** Version of the first event matching, or fails. */
const versionOf = (events: StoredEvent[], match: (e: StoredEvent) => boolean) => {
  const found = events.find(match);
  if (!found) throw new Error("no such event in the log");
  return found.version;
};
const claimOf = (queueItemId: string) => (e: StoredEvent) =>
  e.type === "queue.item-send-started" && e.payload.queueItemId === queueItemId;

describe.each(databases)("drain triggers: every path to 'ready, non-empty, not paused' drains (real server, agent SDK) — %s", (database) => {
  let h: DrainHarness;
  const threads: string[] = [];
  // A long backoff: a head waiting for its retry stays blocked for the whole test.
  beforeAll(async () => {
    h = await startDrainHarness({ drainPolicy: { maxQueueItems: 1000, maxAttempts: 3, retryBaseMs: 600_000, retryMaxMs: 600_000, dispatchTimeoutMs: 30_000 } }, database);
  });
  afterAll(() => h?.close());
  afterEach(async () => {
    for (const threadId of threads.splice(0)) expectOneTurnAtATime(await h.events(threadId));
  });
  const readyThread = async (ready = true) => {
    const threadId = await h.createThread();
    threads.push(threadId);
    if (ready) await h.agent.session(threadId, "ready");
    return threadId;
  };

  it("enqueue on an idle, ready thread dispatches the item at once, and its turn resolves it", async () => {
    const threadId = await readyThread();
    const a = await h.add(threadId, "hello");
    const turn = await h.agent.nextTurn(threadId);
    expect(turn.dispatch).toMatchObject({ threadId, queueItemId: a, kind: "turn", message: { text: "hello" } });
    const turnId = await turn.start();
    const state = await h.state(threadId);
    expect(state.items.get(a)).toBeUndefined();
    expect(state.session).toMatchObject({ status: "running", activeTurnId: turnId });
  });

  it("session ready: items queued while the agent was away drain when it reports ready", async () => {
    const threadId = await readyThread(false);
    const a = await h.add(threadId, "one");
    await h.add(threadId, "two");
    expect((await h.state(threadId)).items.get(a)!.status).toBe("pending");
    await h.agent.session(threadId, "starting");
    await h.agent.session(threadId, "ready");
    const turn = await h.agent.nextTurn(threadId);
    expect(turn.dispatch.queueItemId).toBe(a);
    const events = await h.events(threadId);
    const ready = versionOf(events, (e) => e.type === "session.changed" && e.payload.status === "ready");
    expect(versionOf(events, claimOf(a))).toBeGreaterThan(ready);
    await turn.start();
  });

  it("turn completed: the next item leaves only after the turn ended, one turn per item", async () => {
    const threadId = await readyThread();
    const a = await h.add(threadId, "first");
    const first = await h.agent.nextTurn(threadId);
    // Everything that could drain arrives while A is dispatched but not started, and while it runs.
    const b = await h.add(threadId, "second");
    await h.agent.session(threadId, "ready");
    await h.user.queue.resume.mutate({ threadId });
    await first.start();
    const c = await h.add(threadId, "third");
    await h.user.queue.move.mutate({ threadId, queueItemId: c, afterId: null });
    expect(h.agent.pending(threadId)).toBe(0);
    first.end("completed");
    const next = await h.agent.nextTurn(threadId);
    expect(next.dispatch.queueItemId).toBe(c);
    const events = await h.events(threadId);
    expect(versionOf(events, claimOf(c))).toBeGreaterThan(versionOf(events, (e) => e.type === "turn.ended"));
    expect(claimsIn(events).map((e) => e.payload.queueItemId)).toEqual([a, c]);
    await next.start();
    next.end();
    expect((await h.agent.nextTurn(threadId)).dispatch.queueItemId).toBe(b);
  });

  it("resume: a paused queue drains when resumed", async () => {
    const threadId = await readyThread();
    await h.user.queue.pause.mutate({ threadId });
    const a = await h.add(threadId, "held by the pause");
    await h.user.queue.resume.mutate({ threadId });
    const turn = await h.agent.nextTurn(threadId);
    expect(turn.dispatch.queueItemId).toBe(a);
    const events = await h.events(threadId);
    expect(versionOf(events, claimOf(a))).toBeGreaterThan(versionOf(events, (e) => e.type === "queue.resumed"));
    await turn.start();
  });

  it("failure cleared by retry: a failed item is sent again when retried", async () => {
    const threadId = await readyThread();
    const a = await h.add(threadId, "fails once");
    (await h.agent.nextTurn(threadId)).fail("model unavailable", false);
    await eventually(async () => expect((await h.state(threadId)).items.get(a)!.status).toBe("failed"));
    await h.user.queue.retry.mutate({ threadId, queueItemId: a });
    const again = await h.agent.nextTurn(threadId);
    expect(again.dispatch.queueItemId).toBe(a);
    expect(claimsIn(await h.events(threadId))).toHaveLength(2);
    await again.start();
  });

  it("failure cleared by remove: removing the failed item releases the hold and the next item drains", async () => {
    const threadId = await readyThread();
    const a = await h.add(threadId, "fails");
    const b = await h.add(threadId, "waits behind the hold");
    (await h.agent.nextTurn(threadId)).fail("bad request", false);
    await eventually(async () => expect((await h.state(threadId)).pauseReason).toBe("failure"));
    await h.user.queue.remove.mutate({ threadId, queueItemId: a });
    const turn = await h.agent.nextTurn(threadId);
    expect(turn.dispatch.queueItemId).toBe(b);
    const events = await h.events(threadId);
    expect(versionOf(events, claimOf(b))).toBeGreaterThan(versionOf(events, (e) => e.type === "queue.item-removed"));
    await turn.start();
  });

  it("remove of the head: a head waiting for its retry is removed and the next item drains at once", async () => {
    const threadId = await readyThread();
    const a = await h.add(threadId, "retry later");
    const b = await h.add(threadId, "next");
    (await h.agent.nextTurn(threadId)).fail("busy, try again", true);
    await eventually(async () => expect((await h.state(threadId)).items.get(a)!.notBefore).not.toBeNull());
    await h.user.queue.remove.mutate({ threadId, queueItemId: a });
    const turn = await h.agent.nextTurn(threadId);
    expect(turn.dispatch.queueItemId).toBe(b);
    await turn.start();
  });

  it("move to the head: an item moved ahead of a head waiting for its retry drains at once", async () => {
    const threadId = await readyThread();
    const a = await h.add(threadId, "retry later");
    const b = await h.add(threadId, "moved first");
    (await h.agent.nextTurn(threadId)).fail("busy, try again", true);
    await eventually(async () => expect((await h.state(threadId)).items.get(a)!.notBefore).not.toBeNull());
    await h.user.queue.move.mutate({ threadId, queueItemId: b, afterId: null });
    const turn = await h.agent.nextTurn(threadId);
    expect(turn.dispatch.queueItemId).toBe(b);
    await turn.start();
    expect((await h.state(threadId)).items.get(a)!.status).toBe("pending");
  });

  it("many triggers racing, across three more drain reactors on the same database: one claim, one dispatch", async () => {
    const threadId = await readyThread();
    await h.user.queue.pause.mutate({ threadId });
    const items = [];
    for (let i = 0; i < 5; i++) items.push(await h.add(threadId, `racer ${i}`));
    // Three more instances of the reactor, as three more servers would run.
    const others = await Promise.all([1, 2, 3].map(() => startDrainReactor(h.server.services)));
    try {
      await Promise.all([
        h.user.queue.resume.mutate({ threadId }),
        h.agent.session(threadId, "ready"),
        h.add(threadId, "late arrival"),
        h.user.queue.move.mutate({ threadId, queueItemId: items[4], afterId: null }),
        ...items.map(() => h.server.services.engine.execute(threadId, { type: "drain.claim" }, { actor: "test" })),
      ]);
      const turn = await h.agent.nextTurn(threadId);
      await turn.start();
      const claims = claimsIn(await h.events(threadId));
      expect(claims).toHaveLength(1);
      expect(claims[0].payload.queueItemId).toBe(turn.dispatch.queueItemId);
      expect(h.agent.pending(threadId)).toBe(0);
      expect(h.agent.handled.filter((d) => d.threadId === threadId)).toHaveLength(1);
    } finally {
      await Promise.all(others.map((r) => r.close()));
    }
  });
});
