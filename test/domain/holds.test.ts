import { describe, expect, it } from "vitest";
import { drainCommandDue, drainWakeAt, sendingItem, snapshotOf } from "../../src/domain/index.js";
import { Thread, claimOf, types } from "./harness.js";

/** Runs the next item's turn to completion (claimed already, by the add or a turn's end, or now); returns its id. */
function runNext(t: Thread, turnId: string): string {
  const id = sendingItem(t.state)?.queueItemId ?? claimOf(t.claim()).queueItemId;
  t.started(id, turnId);
  t.ended(turnId);
  return id;
}

describe("step mode", () => {
  it("over three items: each completed turn holds the queue (step) until someone resumes", () => {
    const t = Thread.ready();
    expect(types(t.ok({ type: "queue.setMode", mode: "step" }))).toEqual(["queue.mode-changed"]);
    for (const id of ["a", "b", "c"]) t.add(id);
    const sent: string[] = [];
    for (const turn of ["t1", "t2", "t3"]) {
      sent.push(runNext(t, turn));
      expect(t.state).toMatchObject({ paused: true, pauseReason: "step" });
      expect(t.claim()).toEqual([]);
      expect(types(t.ok({ type: "queue.resume" }))).toEqual(["queue.resumed"]);
    }
    expect(sent).toEqual(["a", "b", "c"]);
    expect(snapshotOf(t.state).queue.mode).toBe("step");
  });

  it("a steer goes past the step hold and lifts it; the next completed turn holds again", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.setMode", mode: "step" });
    t.add("a");
    t.add("b");
    runNext(t, "t1");
    const events = t.run({ type: "queue.sendNow", queueItemId: "b" });
    expect(types(events)).toEqual(["queue.item-delivery-changed", "queue.resumed", "queue.item-send-started"]);
    t.started("b", "t2");
    t.ended("t2");
    expect(t.state.pauseReason).toBe("step");
  });

  it("back to auto lets a step hold go; the same mode again changes nothing", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.setMode", mode: "step" });
    t.add("a");
    t.add("b");
    runNext(t, "t1");
    expect(t.ok({ type: "queue.setMode", mode: "step" })).toEqual([]);
    expect(types(t.ok({ type: "queue.setMode", mode: "auto" }))).toEqual(["queue.mode-changed", "queue.resumed"]);
    expect(claimOf(t.claim()).queueItemId).toBe("b");
  });

  it("switching to auto keeps any other hold", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.setMode", mode: "step" });
    t.ok({ type: "queue.pause" });
    expect(types(t.ok({ type: "queue.setMode", mode: "auto" }))).toEqual(["queue.mode-changed"]);
    expect(t.state.pauseReason).toBe("user");
  });
});

describe("rate-limit hold", () => {
  const retryAt = (t: Thread, ms: number) => new Date(t.now.getTime() + ms).toISOString();

  it("from a failed start with retryAt: the item stays pending, no attempt spent, and the queue holds until then", () => {
    const t = Thread.ready({ maxQueueItems: 10, maxAttempts: 1, retryBaseMs: 10, retryMaxMs: 10, dispatchTimeoutMs: 60_000 });
    t.add("a");
    t.claim();
    const at = retryAt(t, 60_000);
    const events = t.ok({ type: "agent.turnStartFailed", queueItemId: "a", reason: "429", retryable: true, retryAt: at });
    expect(types(events)).toEqual(["queue.item-send-failed", "queue.paused"]);
    expect(t.item("a")).toMatchObject({ status: "pending", attempts: 0 });
    expect(snapshotOf(t.state).queue).toMatchObject({ paused: true, pauseReason: "rate-limited", resumeAt: at });
    expect(t.claim()).toEqual([]);
    // The drain wakes at resumeAt and ends the hold then, not before.
    expect(drainWakeAt(t.state, t.now, t.policy, 0)?.toISOString()).toBe(at);
    expect(t.ok({ type: "drain.resume" })).toEqual([]);
    t.advance(60_000);
    expect(drainCommandDue(t.state, t.now, t.policy, 0)).toEqual({ type: "drain.resume" });
    expect(types(t.ok({ type: "drain.resume" }))).toEqual(["queue.resumed"]);
    expect(t.ok({ type: "drain.resume" })).toEqual([]);
    // maxAttempts is 1: the rate-limited attempt did not count, so this one is attempt 1 again.
    expect(claimOf(t.claim())).toMatchObject({ queueItemId: "a", attempt: 1 });
  });

  it("from agent.session rate-limited: the session does not take a turn until the hold ends by itself", () => {
    const t = Thread.holding(undefined, "a");
    const at = retryAt(t, 5_000);
    const events = t.ok({ type: "agent.session", status: "rate-limited", retryAt: at });
    expect(types(events)).toEqual(["session.changed", "queue.paused"]);
    expect(t.state).toMatchObject({ pauseReason: "rate-limited", resumeAt: at });
    expect(t.claim()).toEqual([]);
    t.advance(5_000);
    t.ok({ type: "drain.resume" });
    // The session still says rate-limited, but its hold is over: it takes the turn.
    expect(claimOf(t.claim()).queueItemId).toBe("a");
  });

  it("a steer or an interrupt never passes it", () => {
    const t = Thread.holding(undefined, "a");
    t.ok({ type: "agent.session", status: "rate-limited", retryAt: retryAt(t, 5_000) });
    expect(types(t.run({ type: "queue.sendNow", queueItemId: "a" }))).toEqual(["queue.item-delivery-changed"]);
    expect(types(t.add("b", "now", { delivery: "interrupt" }))).toEqual(["queue.item-added"]);
    expect(t.claim()).toEqual([]);
  });

  it("a user's resume ends it early", () => {
    const t = Thread.ready();
    t.add("a");
    t.claim();
    t.ok({ type: "agent.turnStartFailed", queueItemId: "a", reason: "429", retryable: true, retryAt: retryAt(t, 60_000) });
    expect(types(t.ok({ type: "queue.resume" }))).toEqual(["queue.resumed"]);
    expect(t.state.resumeAt).toBeNull();
    expect(claimOf(t.claim()).queueItemId).toBe("a");
  });

  it("the agent reporting ready ends it", () => {
    const t = Thread.ready();
    t.ok({ type: "agent.session", status: "rate-limited", retryAt: retryAt(t, 60_000) });
    expect(types(t.ready())).toEqual(["session.changed", "queue.resumed"]);
  });

  it("a later time moves it: drain.resume at the earlier time does nothing", () => {
    const t = Thread.ready();
    t.ok({ type: "agent.session", status: "rate-limited", retryAt: retryAt(t, 1_000) });
    const later = retryAt(t, 9_000);
    expect(types(t.ok({ type: "agent.session", status: "rate-limited", retryAt: later }))).toEqual(["queue.paused"]);
    t.advance(1_000);
    expect(t.ok({ type: "drain.resume" })).toEqual([]);
    expect(t.state.resumeAt).toBe(later);
  });

  it("under the user's own pause, the pause stays the user's; their resume lets the item go (the agent reports the limit again if it lasts)", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.pause" });
    t.add("a");
    t.run({ type: "queue.sendNow", queueItemId: "a" });
    const at = retryAt(t, 5_000);
    expect(types(t.ok({ type: "agent.turnStartFailed", queueItemId: "a", reason: "429", retryable: true, retryAt: at }))).toEqual([
      "queue.item-send-failed",
    ]);
    expect(t.state.pauseReason).toBe("user");
    expect(t.item("a")).toMatchObject({ status: "pending", notBefore: null });
    // Still a steer: it goes past the user's pause again.
    expect(claimOf(t.claim()).queueItemId).toBe("a");
  });
});
