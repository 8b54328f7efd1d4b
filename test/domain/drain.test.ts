import { describe, expect, it } from "vitest";
import { drainBlocker, nextItem, isEligible, snapshotOf, type DomainEvent } from "../../src/domain/index.js";
import { Thread, claimOf, types } from "./harness.js";

const policy = { maxQueueItems: 1000, maxAttempts: 3, retryBaseMs: 1_000, retryMaxMs: 10_000, dispatchTimeoutMs: 60_000 };

/** A ready thread holding `ids` in order, nothing claimed yet. */
const ready = (...ids: string[]): Thread => Thread.holding(policy, ...ids);

const claimedId = (events: DomainEvent[]) => claimOf(events).queueItemId;

describe("claim eligibility", () => {
  it("claims the head item of a ready, unpaused, active thread", () => {
    const t = ready("a", "b");
    expect(isEligible(t.state, t.now)).toBe(true);
    expect(claimedId(t.claim())).toBe("a");
    expect(t.item("a")?.status).toBe("sending");
  });

  it("claims nothing from an empty queue", () => {
    const t = ready();
    expect(drainBlocker(t.state, t.now)).toBe("queue empty");
    expect(t.claim()).toEqual([]);
  });

  it.each(["unknown", "starting", "running", "stopped", "error"] as const)("claims nothing while the session is %s", (status) => {
    const t = new Thread("t1", policy);
    t.create();
    if (status !== "unknown") t.ok({ type: "agent.session", status });
    t.add("a");
    expect(isEligible(t.state, t.now)).toBe(false);
    expect(t.claim()).toEqual([]);
  });

  it("claims nothing while the queue is paused, and the head once resumed", () => {
    const t = ready();
    t.ok({ type: "queue.pause" });
    t.add("a");
    expect(t.claim()).toEqual([]);
    t.ok({ type: "queue.resume" });
    expect(claimedId(t.claim())).toBe("a");
  });

  it("claims nothing on an archived thread", () => {
    const t = ready();
    t.ok({ type: "queue.pause" });
    t.add("a");
    t.ok({ type: "thread.archive" });
    t.ok({ type: "queue.resume" });
    expect(drainBlocker(t.state, t.now)).toBe("archived");
    expect(t.claim()).toEqual([]);
  });

  it("claims nothing while another item is being sent", () => {
    const t = ready("a", "b");
    t.claim();
    expect(drainBlocker(t.state, t.now)).toBe("an item is being sent");
    expect(t.claim()).toEqual([]);
  });

  it("claims nothing while a turn is in progress", () => {
    const t = ready("a", "b");
    t.claim();
    t.started("a", "turn1");
    t.ok({ type: "agent.session", status: "ready" }); // even if the agent says ready mid-turn
    expect(drainBlocker(t.state, t.now)).toBe("turn in progress");
    expect(t.claim()).toEqual([]);
  });

  it("skips failed items, which keep their place, and claims the first pending one", () => {
    const t = ready("a", "b", "c");
    t.claim();
    t.startFailed("a", false);
    t.ok({ type: "queue.resume" });
    expect(nextItem(t.state)?.queueItemId).toBe("b");
    expect(claimedId(t.claim())).toBe("b");
    expect(t.order()).toEqual(["a", "b", "c"]);
    expect(t.item("a")?.status).toBe("failed");
  });
});

describe("claim carries the full dispatch", () => {
  it("with the text at claim time, the message, options, attempt and a dispatch id", () => {
    const t = Thread.ready(policy);
    t.ok({ type: "queue.pause" });
    t.ok({
      type: "queue.add", queueItemId: "a",
      message: { messageId: "m-a", text: "draft", attachments: [{ name: "log.txt" }] },
      options: { model: "o4", mode: "auto" },
    });
    t.ok({ type: "queue.edit", queueItemId: "a", text: "final wording" });
    t.ok({ type: "queue.resume" });
    expect(claimOf(t.claim())).toEqual({
      queueItemId: "a",
      dispatchId: expect.any(String),
      kind: "turn",
      expectedTurnId: null,
      runtimeSessionId: null,
      attempt: 1,
      message: { messageId: "m-a", text: "final wording", attachments: [{ name: "log.txt" }] },
      options: { model: "o4", mode: "auto" },
    });
    expect(t.item("a")).toMatchObject({ status: "sending", attempts: 1, dispatchKind: "turn" });
  });

  it("gives every dispatch of an item its own dispatch id, also after a retry restarts its attempts", () => {
    const t = ready("a");
    const seen = new Set<string>();
    seen.add(claimOf(t.claim()).dispatchId);
    t.startFailed("a", true);
    t.advance(60_000);
    seen.add(claimOf(t.claim()).dispatchId);
    t.startFailed("a", false);
    t.ok({ type: "queue.retry", queueItemId: "a" });
    const again = claimOf(t.claim());
    expect(again.attempt).toBe(1);
    seen.add(again.dispatchId);
    expect(seen.size).toBe(3);
  });

  it("keeps dispatch ids within the 128-character id limit for the longest item ids", () => {
    const t = Thread.ready(policy);
    const id = "q".repeat(128);
    const { dispatchId } = claimOf(t.ok({ type: "queue.add", queueItemId: id, message: { messageId: "m", text: "x" } }));
    expect(dispatchId.length).toBeLessThanOrEqual(128);
    expect(t.item(id)?.dispatchId).toBe(dispatchId);
  });
});

describe("one turn per item", () => {
  it("after a claim nothing else is claimable until the turn started AND ended", () => {
    const t = ready("a", "b");
    t.claim();
    expect(t.claim()).toEqual([]);
    t.ok({ type: "agent.session", status: "ready" });
    expect(t.claim()).toEqual([]);
    t.started("a", "turn1");
    expect(t.claim()).toEqual([]);
    expect(claimedId(t.ended("turn1"))).toBe("b");
    expect(t.claim()).toEqual([]);
  });
});

describe("claim in the same decision", () => {
  it("an add on an idle thread whose session is ready claims the item in the add's own decision", () => {
    const t = Thread.ready(policy);
    const events = t.ok({ type: "queue.add", queueItemId: "a", message: { messageId: "m-a", text: "hi" } });
    expect(types(events)).toEqual(["queue.item-added", "queue.item-send-started"]);
    expect(claimOf(events)).toMatchObject({ queueItemId: "a", kind: "turn", expectedTurnId: null, attempt: 1 });
    expect(t.item("a")?.status).toBe("sending");
    expect(t.claim()).toEqual([]);
  });

  it("an add on a busy thread (an item being sent, a turn running) only queues; the turn's end claims it", () => {
    const t = Thread.ready(policy);
    t.add("a");
    expect(types(t.add("b"))).toEqual(["queue.item-added"]);
    t.started("a", "turn1");
    expect(types(t.add("c"))).toEqual(["queue.item-added"]);
    expect(t.item("b")?.status).toBe("pending");
    expect(claimedId(t.ended("turn1"))).toBe("b");
  });

  it("an add waits, unclaimed, on a paused thread or a session not ready; the session's ready report claims the head", () => {
    const t = new Thread("t1", policy);
    t.create();
    expect(types(t.add("a"))).toEqual(["queue.item-added"]);
    expect(types(t.ok({ type: "agent.session", status: "ready" }))).toEqual(["session.changed", "queue.item-send-started"]);
    expect(t.item("a")?.status).toBe("sending");
  });
});

describe("turn started", () => {
  it("resolves the item, puts the message in the transcript and starts the turn", () => {
    const t = ready("a", "b");
    t.claim();
    const events = t.started("a", "turn1");
    expect(events).toEqual([
      { type: "turn.started", payload: { turnId: "turn1", queueItemId: "a" } },
      { type: "queue.item-resolved", payload: { queueItemId: "a", messageId: "m-a", turnId: "turn1" } },
      { type: "message.sent", payload: { messageId: "m-a", queueItemId: "a", turnId: "turn1", text: "text of a", attachments: [], attempts: 1 } },
    ]);
    expect(t.item("a")).toBeUndefined();
    expect(t.state.messages.get("m-a")?.fate).toBe("sent");
    expect(snapshotOf(t.state).session).toEqual({ status: "running", activeTurnId: "turn1", error: null, runtimeSessionId: null });
  });

  it("puts nothing in the transcript at enqueue, only when the turn starts", () => {
    const t = ready("a");
    const log = () => t.log.filter((e) => e.type === "message.sent");
    expect(log()).toHaveLength(0);
    t.claim();
    expect(log()).toHaveLength(0);
    t.started("a", "turn1");
    expect(log()).toHaveLength(1);
  });

  it("is refused for a pending item (ITEM_NOT_SENDING)", () => {
    const t = ready();
    t.ok({ type: "queue.pause" });
    t.add("a");
    expect(t.refused({ type: "agent.turnStarted", queueItemId: "a", turnId: "turn1" })).toBe("ITEM_NOT_SENDING");
  });

  it("is refused for a failed item (ITEM_NOT_SENDING)", () => {
    const t = ready("a");
    t.claim();
    t.startFailed("a", false);
    expect(t.refused({ type: "agent.turnStarted", queueItemId: "a", turnId: "turn1" })).toBe("ITEM_NOT_SENDING");
  });

  it("is refused for an item already resolved (ITEM_NOT_FOUND): a turn never starts twice", () => {
    const t = ready("a");
    t.claim();
    t.started("a", "turn1");
    expect(t.refused({ type: "agent.turnStarted", queueItemId: "a", turnId: "turn1" })).toBe("ITEM_NOT_FOUND");
  });
});

describe("turn start failed", () => {
  it("retryable: the item is pending again, waiting until its backoff retryAt", () => {
    const t = ready("a", "b");
    t.claim();
    const events = t.startFailed("a", true, "agent busy");
    expect(events).toEqual([
      {
        type: "queue.item-send-failed",
        payload: { queueItemId: "a", dispatchId: expect.any(String), reason: "agent busy", final: false, retryAt: "2026-01-01T00:00:01.000Z", messageId: "m-a", rateLimited: false },
      },
    ]);
    expect(t.item("a")).toMatchObject({ status: "pending", notBefore: "2026-01-01T00:00:01.000Z", failureReason: "agent busy", attempts: 1 });
    expect(t.state.paused).toBe(false);
  });

  it("the head waits for its backoff and holds the items behind it", () => {
    const t = ready("a", "b");
    t.claim();
    t.startFailed("a", true);
    expect(drainBlocker(t.state, t.now)).toBe("next item waits for its retry");
    expect(t.claim()).toEqual([]);
    t.advance(999);
    expect(t.claim()).toEqual([]);
    t.advance(1);
    expect(claimOf(t.claim())).toMatchObject({ queueItemId: "a", attempt: 2 });
  });

  it("backs off exponentially between attempts", () => {
    const t = ready("a");
    const waits: number[] = [];
    for (let attempt = 1; attempt < policy.maxAttempts; attempt++) {
      t.claim();
      const failed = t.startFailed("a", true)[0]!;
      if (failed.type !== "queue.item-send-failed") throw new Error("expected a send failure");
      waits.push(Date.parse(failed.payload.retryAt!) - t.now.getTime());
      t.advance(60_000);
    }
    expect(waits).toEqual([1_000, 2_000]);
  });

  it("attempts exhausted: the item fails and the queue is held", () => {
    const t = ready("a", "b");
    for (let attempt = 1; attempt < policy.maxAttempts; attempt++) {
      t.claim();
      t.startFailed("a", true);
      t.advance(60_000);
    }
    t.claim();
    expect(types(t.startFailed("a", true, "still busy"))).toEqual(["queue.item-send-failed", "queue.paused"]);
    expect(t.item("a")).toMatchObject({ status: "failed", failureReason: "still busy", attempts: policy.maxAttempts });
    expect(t.state).toMatchObject({ paused: true, pauseReason: "failure" });
    expect(t.claim()).toEqual([]);
  });

  it("permanent: the item fails at once and the queue is held (paused, reason failure)", () => {
    const t = ready("a", "b");
    t.claim();
    const events = t.startFailed("a", false, "model not available");
    expect(events).toEqual([
      { type: "queue.item-send-failed", payload: { queueItemId: "a", dispatchId: expect.any(String), reason: "model not available", final: true, retryAt: null, messageId: "m-a", rateLimited: false } },
      { type: "queue.paused", payload: { reason: "failure", resumeAt: null } },
    ]);
    expect(snapshotOf(t.state).queue).toMatchObject({ paused: true, pauseReason: "failure" });
    expect(t.claim()).toEqual([]);
    expect(t.item("b")?.status).toBe("pending");
  });

  it("does not hold a queue the user already paused (the user's pause stays)", () => {
    const t = ready("a");
    t.claim();
    t.ok({ type: "queue.pause" });
    expect(types(t.startFailed("a", false))).toEqual(["queue.item-send-failed"]);
    expect(t.state.pauseReason).toBe("user");
  });

  it("is refused when the item is not being sent (ITEM_NOT_SENDING)", () => {
    const t = ready();
    t.ok({ type: "queue.pause" });
    t.add("a");
    expect(t.refused({ type: "agent.turnStartFailed", queueItemId: "a", reason: "x", retryable: true })).toBe("ITEM_NOT_SENDING");
  });
});

describe("retry and remove of a failed item", () => {
  /** a failed (queue held), b pending behind it. */
  function held(): Thread {
    const t = ready("a", "b", "c");
    t.claim();
    t.startFailed("a", false);
    return t;
  }

  it("retry puts the item back to pending at its old position and releases the hold", () => {
    const t = held();
    expect(types(t.run({ type: "queue.retry", queueItemId: "a" }))).toEqual(["queue.item-requeued", "queue.resumed"]);
    expect(t.item("a")).toMatchObject({ status: "pending", failureReason: null, attempts: 0 });
    expect(t.order()).toEqual(["a", "b", "c"]);
    expect(claimOf(t.claim())).toMatchObject({ queueItemId: "a", attempt: 1 });
  });

  it("retry keeps the hold while another item is still failed", () => {
    const t = held();
    t.ok({ type: "queue.resume" });
    t.claim();
    t.startFailed("b", false); // b fails too, holding the queue again
    expect(types(t.run({ type: "queue.retry", queueItemId: "a" }))).toEqual(["queue.item-requeued"]);
    expect(t.state).toMatchObject({ paused: true, pauseReason: "failure" });
    expect(types(t.run({ type: "queue.retry", queueItemId: "b" }))).toEqual(["queue.item-requeued", "queue.resumed"]);
  });

  it("retry does not lift a pause the user made", () => {
    const t = held();
    t.ok({ type: "queue.pause" });
    expect(types(t.run({ type: "queue.retry", queueItemId: "a" }))).toEqual(["queue.item-requeued"]);
    expect(t.state.pauseReason).toBe("user");
  });

  it("retry of a pending item changes nothing", () => {
    const t = held();
    expect(t.ok({ type: "queue.retry", queueItemId: "b" })).toEqual([]);
  });

  it("retry is refused for an item being sent (ITEM_NOT_FAILED)", () => {
    const t = ready("a");
    t.claim();
    expect(t.refused({ type: "queue.retry", queueItemId: "a" })).toBe("ITEM_NOT_FAILED");
  });

  it("retry of an unknown item is refused (ITEM_NOT_FOUND)", () => {
    expect(held().refused({ type: "queue.retry", queueItemId: "nope" })).toBe("ITEM_NOT_FOUND");
  });

  it("removing the failed item releases the hold and the next item drains", () => {
    const t = held();
    expect(types(t.run({ type: "queue.remove", queueItemId: "a" }))).toEqual(["queue.item-removed", "queue.resumed"]);
    expect(claimOf(t.claim()).queueItemId).toBe("b");
  });

  it("removing a pending item does not release the hold", () => {
    const t = held();
    expect(types(t.run({ type: "queue.remove", queueItemId: "b" }))).toEqual(["queue.item-removed"]);
    expect(t.state.paused).toBe(true);
  });
});

describe("dispatch timeout", () => {
  it("fails the item sent too long without a turn start and holds the queue", () => {
    const t = ready("a", "b");
    const { dispatchId } = claimOf(t.claim());
    const events = t.ok({ type: "drain.timeout", queueItemId: "a", dispatchId });
    expect(types(events)).toEqual(["queue.item-send-failed", "queue.paused"]);
    expect(t.item("a")).toMatchObject({ status: "failed", failureReason: expect.stringMatching(/^timeout/) });
    expect(t.state.pauseReason).toBe("failure");
  });

  it("a stale timer (the turn already started) is a no-op", () => {
    const t = ready("a");
    const { dispatchId } = claimOf(t.claim());
    t.started("a", "turn1");
    expect(t.ok({ type: "drain.timeout", queueItemId: "a", dispatchId })).toEqual([]);
  });

  it("a stale timer of an earlier dispatch of the same item is a no-op", () => {
    const t = ready("a");
    const first = claimOf(t.claim()).dispatchId;
    t.startFailed("a", false);
    t.ok({ type: "queue.retry", queueItemId: "a" });
    t.claim(); // the retried item is sent again: attempt 1 once more
    expect(t.ok({ type: "drain.timeout", queueItemId: "a", dispatchId: first })).toEqual([]);
    expect(t.item("a")?.status).toBe("sending");
  });

  it("a timer for a removed item is a no-op", () => {
    const t = ready("a");
    const { dispatchId } = claimOf(t.claim());
    t.startFailed("a", false);
    t.ok({ type: "queue.remove", queueItemId: "a" });
    expect(t.ok({ type: "drain.timeout", queueItemId: "a", dispatchId })).toEqual([]);
    expect(t.ok({ type: "drain.timeout", queueItemId: "never-queued", dispatchId: "never-queued.v1" })).toEqual([]);
  });
});

describe("turn ended", () => {
  function running(): Thread {
    const t = ready("a", "b");
    t.claim();
    t.started("a", "turn1");
    return t;
  }

  it("completed: the session is ready again and the next item is eligible", () => {
    const t = running();
    const events = t.ended("turn1", "completed");
    expect(events[0]).toEqual({ type: "turn.ended", payload: { turnId: "turn1", outcome: "completed", error: null } });
    expect(t.state.session).toMatchObject({ status: "ready", activeTurnId: null, error: null });
    // The next item goes in the same decision.
    expect(types(events)).toEqual(["turn.ended", "queue.item-send-started"]);
    expect(claimOf(events).queueItemId).toBe("b");
  });

  it("interrupted: the queue pauses (reason interrupted)", () => {
    const t = running();
    expect(types(t.ended("turn1", "interrupted"))).toEqual(["turn.ended", "queue.paused"]);
    expect(t.state).toMatchObject({ paused: true, pauseReason: "interrupted" });
    expect(t.claim()).toEqual([]);
  });

  it("failed: the queue is held (reason failure)", () => {
    const t = running();
    t.run({ type: "agent.turnEnded", turnId: "turn1", outcome: "failed", error: "rate limited" });
    expect(t.state).toMatchObject({ paused: true, pauseReason: "failure" });
    expect(t.claim()).toEqual([]);
  });

  it("resume continues after an interrupt", () => {
    const t = running();
    t.ended("turn1", "interrupted");
    expect(types(t.run({ type: "queue.resume" }))).toEqual(["queue.resumed"]);
    expect(claimOf(t.claim()).queueItemId).toBe("b");
  });

  it("is refused for a turn that is not the active one (TURN_NOT_ACTIVE)", () => {
    const t = running();
    expect(t.refused({ type: "agent.turnEnded", turnId: "other", outcome: "completed" })).toBe("TURN_NOT_ACTIVE");
    t.ended("turn1");
    expect(t.refused({ type: "agent.turnEnded", turnId: "turn1", outcome: "completed" })).toBe("TURN_NOT_ACTIVE");
  });
});

describe("pause and resume", () => {
  it("pause is idempotent", () => {
    const t = ready();
    expect(types(t.run({ type: "queue.pause" }))).toEqual(["queue.paused"]);
    expect(t.ok({ type: "queue.pause" })).toEqual([]);
    expect(t.state).toMatchObject({ paused: true, pauseReason: "user" });
  });

  it("pausing during a failure hold makes it the user's pause", () => {
    const t = ready("a");
    t.claim();
    t.startFailed("a", false);
    expect(types(t.run({ type: "queue.pause" }))).toEqual(["queue.paused"]);
    expect(t.state.pauseReason).toBe("user");
  });

  it("resume of an unpaused queue emits nothing", () => {
    expect(ready().ok({ type: "queue.resume" })).toEqual([]);
  });

  it("resume releases a failure hold; the failed item stays failed and is skipped", () => {
    const t = ready("a", "b");
    t.claim();
    t.startFailed("a", false);
    t.ok({ type: "queue.resume" });
    expect(claimOf(t.claim()).queueItemId).toBe("b");
    expect(t.item("a")?.status).toBe("failed");
  });

  it("pausing while an item is being sent does not stop that dispatch", () => {
    const t = ready("a", "b");
    t.claim();
    t.ok({ type: "queue.pause" });
    t.started("a", "turn1");
    t.ended("turn1");
    expect(t.claim()).toEqual([]);
  });
});

describe("session", () => {
  it("reports change the session status, and repeats emit nothing", () => {
    const t = new Thread();
    t.create();
    expect(t.ok({ type: "agent.session", status: "starting" })).toHaveLength(1);
    expect(t.ok({ type: "agent.session", status: "starting" })).toEqual([]);
    expect(t.ok({ type: "agent.session", status: "error", error: "crashed" })).toHaveLength(1);
    expect(t.state.session).toMatchObject({ status: "error", activeTurnId: null, error: "crashed" });
  });

  it.each(["stopped", "error"] as const)("%s clears the active turn, so a restarted session drains again", (status) => {
    const t = ready("a", "b");
    t.claim();
    t.started("a", "turn1");
    t.ok({ type: "agent.session", status });
    expect(t.state.session.activeTurnId).toBeNull();
    expect(claimOf(t.ready()).queueItemId).toBe("b");
  });

  it("session ready triggers eligibility of a waiting queue", () => {
    const t = new Thread("t1", policy);
    t.create();
    t.add("a");
    expect(t.claim()).toEqual([]);
    expect(claimOf(t.ready()).queueItemId).toBe("a");
  });
});

describe("a turn reported once it is over (a handler that returned before reporting its start)", () => {
  it("starts and ends in one decision, and the next item is claimed in it too", () => {
    const t = ready("a", "b");
    claimOf(t.claim());
    const events = t.ok({ type: "agent.turnEnded", turnId: "turn-a", queueItemId: "a", outcome: "completed" });
    expect(types(events)).toEqual(["turn.started", "queue.item-resolved", "message.sent", "turn.ended", "queue.item-send-started"]);
    expect(claimedId(events)).toBe("b");
    expect(t.state.items.has("a")).toBe(false);
    expect(t.state.session.activeTurnId).toBeNull();
  });

  it("a failed outcome holds the queue, as a failed turn does", () => {
    const t = ready("a", "b");
    t.claim();
    const events = t.ok({ type: "agent.turnEnded", turnId: "turn-a", queueItemId: "a", outcome: "failed", error: "boom" });
    expect(types(events)).toEqual(["turn.started", "queue.item-resolved", "message.sent", "turn.ended", "queue.paused"]);
  });

  it("is refused, changing nothing, when the item is no longer being sent (its dispatch timed out)", () => {
    const t = ready("a");
    const { dispatchId } = claimOf(t.claim());
    t.ok({ type: "drain.timeout", queueItemId: "a", dispatchId });
    const before = t.state;
    expect(t.refused({ type: "agent.turnEnded", turnId: "turn-a", queueItemId: "a", outcome: "completed" })).toBe("ITEM_NOT_SENDING");
    expect(t.state).toBe(before);
  });

  it("while the named turn runs, is the plain end of that turn", () => {
    const t = ready("a");
    t.claim();
    t.started("a", "turn-a");
    expect(types(t.ok({ type: "agent.turnEnded", turnId: "turn-a", queueItemId: "a", outcome: "completed" }))).toEqual(["turn.ended"]);
  });
});

describe("a report names its dispatch (fencing: a runtime that wakes after losing its claim)", () => {
  it("a start for an earlier claim of the item is refused once the item was claimed again, changing nothing", () => {
    const t = ready("a");
    const first = claimOf(t.claim()).dispatchId;
    t.ok({ type: "drain.timeout", queueItemId: "a", dispatchId: first });
    t.ok({ type: "queue.retry", queueItemId: "a" });
    const second = claimOf(t.claim()).dispatchId;
    expect(second).not.toBe(first);
    const before = t.state;
    for (const stale of [
      { type: "agent.turnStarted", queueItemId: "a", turnId: "late", dispatchId: first },
      { type: "agent.turnStartFailed", queueItemId: "a", dispatchId: first, reason: "late", retryable: true },
      { type: "agent.turnEnded", queueItemId: "a", dispatchId: first, turnId: "late", outcome: "completed" },
    ] as const) {
      expect(t.refused(stale)).toBe("ITEM_NOT_SENDING");
      expect(t.state).toBe(before);
    }
    // The current claim's own report is taken.
    expect(types(t.ok({ type: "agent.turnStarted", queueItemId: "a", turnId: "now", dispatchId: second }))).toContain("turn.started");
  });
});
