import { List as PersistentList, Map as PersistentMap } from "immutable";
import { describe, expect, it } from "vitest";
import {
  backoffMs, compareGoing, defaultDrainPolicy, dispatchDeadline, drainCommandDue, drainWakeAt, firstGoing, placeInLine, initialState, isFrozen, isWaiting,
  mayClaim, newQueueItem, nextWakeAt, orderedItems, type CommandInput, type Delivery, type ThreadState,
  Command,
} from "../../src/domain/index.js";
import { Thread } from "./harness.js";

const policy = { maxQueueItems: 1000, maxAttempts: 5, retryBaseMs: 500, retryMaxMs: 4_000, dispatchTimeoutMs: 60_000 };

describe("retry backoff", () => {
  it("doubles from the base delay after each attempt", () => {
    expect([1, 2, 3, 4].map((a) => backoffMs(a, policy))).toEqual([500, 1_000, 2_000, 4_000]);
  });

  it("never exceeds the maximum delay", () => {
    expect(backoffMs(10, policy)).toBe(4_000);
    expect(backoffMs(1_000, policy)).toBe(4_000);
  });

  it("the default policy allows a few attempts within seconds", () => {
    expect(defaultDrainPolicy.maxAttempts).toBeGreaterThan(1);
    expect(backoffMs(1, defaultDrainPolicy)).toBeLessThanOrEqual(defaultDrainPolicy.retryMaxMs);
  });
});

describe("next wake-up", () => {
  function backingOff(): Thread {
    const t = Thread.ready(policy);
    t.add("a");
    t.claim();
    t.startFailed("a", true);
    return t;
  }

  it("is the head's retry time when only the backoff blocks the thread", () => {
    const t = backingOff();
    expect(nextWakeAt(t.state, t.now)?.toISOString()).toBe("2026-01-01T00:00:00.500Z");
  });

  it("is null once the retry time has passed (the thread is eligible now)", () => {
    const t = backingOff();
    t.advance(500);
    expect(nextWakeAt(t.state, t.now)).toBeNull();
  });

  it("is null when something else blocks the thread at that time (paused)", () => {
    const t = backingOff();
    t.ok({ type: "queue.pause" });
    expect(nextWakeAt(t.state, t.now)).toBeNull();
  });

  it("is null when no item waits for a retry", () => {
    const t = Thread.ready(policy);
    t.ok({ type: "queue.pause" });
    t.add("a");
    expect(nextWakeAt(t.state, t.now)).toBeNull();
  });
});

describe("which item goes next (the rule evolve keeps the answer of), without sorting the queue", () => {
  const item = (queueItemId: string, position: string, status: "pending" | "failed" = "pending", delivery: Delivery = "queue") => ({
    ...newQueueItem({ queueItemId, messageId: queueItemId, text: "", attachments: [], options: {}, position, delivery, author: null }, "2026-01-01T00:00:00.000Z"),
    status,
  });
  // Built by hand, so the waiting order evolve would keep is given in it, by the rule's comparison.
  const state = (...items: ReturnType<typeof item>[]): ThreadState => ({
    ...initialState("t"),
    items: PersistentMap(items.map((i) => [i.queueItemId, i])),
    waiting: PersistentList(items.filter(isWaiting).sort(compareGoing).map((i) => i.queueItemId)),
  });

  it("with plain items, the head of queue order, ties broken by id", () => {
    const s = state(item("b", "a1"), item("c", "a0"), item("a", "a1"), item("z", "a0"));
    expect(orderedItems(s).map((i) => i.queueItemId)).toEqual(["c", "z", "a", "b"]);
    expect(firstGoing(s.items.values())?.queueItemId).toBe("c");
  });

  it("the first pending one; a failed head keeps its place but is skipped", () => {
    const s = state(item("f", "a0", "failed"), item("p2", "a2"), item("p1", "a1"));
    expect(firstGoing(s.items.values())?.queueItemId).toBe("p1");
    expect(firstGoing(state().items.values())).toBeUndefined();
  });

  it("the first interrupt, else the first steer, else the head; each first in queue order, failed ones skipped", () => {
    const s = state(
      item("q", "a0"), item("s2", "a3", "pending", "steer"), item("s1", "a2", "pending", "steer"),
      item("i-failed", "a1", "failed", "interrupt"), item("i", "a4", "pending", "interrupt"),
    );
    expect(firstGoing(s.items.values())?.queueItemId).toBe("i");
    const goes = ["i", "s1", "s2", "q"].map((id) => placeInLine(s, s.items.get(id)!));
    expect(goes).toEqual([1, 2, 3, 4]);
    expect(placeInLine(s, s.items.get("i-failed")!)).toBeNull();
    expect(firstGoing(state(item("q", "a0"), item("s2", "a3", "pending", "steer"), item("s1", "a2", "pending", "steer")).items.values())?.queueItemId).toBe("s1");
  });
});

describe("dispatch timeout", () => {
  const claimed = () => {
    const t = Thread.ready(policy);
    t.add("a");
    t.claim();
    return t;
  };

  it("is due once the dispatch timeout has passed since the claim, and not before", () => {
    const t = claimed();
    const claimedAt = Date.parse(t.item("a").updatedAt);
    expect(dispatchDeadline(t.item("a"), policy, 0).getTime()).toBe(claimedAt + policy.dispatchTimeoutMs);
    expect(drainCommandDue(t.state, new Date(claimedAt + policy.dispatchTimeoutMs - 1), policy, 0)).toBeNull();
    expect(drainWakeAt(t.state, new Date(claimedAt), policy, 0)?.getTime()).toBe(claimedAt + policy.dispatchTimeoutMs);
    expect(drainCommandDue(t.state, new Date(claimedAt + policy.dispatchTimeoutMs), policy, 0)).toEqual({
      type: "drain.timeout", queueItemId: "a", dispatchId: t.item("a").dispatchId,
    });
  });

  it("counts from the server's start when it started after the claim: a restart gives the agent a full timeout", () => {
    const t = claimed();
    const restartedAt = Date.parse(t.item("a").updatedAt) + 10 * policy.dispatchTimeoutMs;
    expect(drainCommandDue(t.state, new Date(restartedAt + policy.dispatchTimeoutMs - 1), policy, restartedAt)).toBeNull();
    expect(drainCommandDue(t.state, new Date(restartedAt + policy.dispatchTimeoutMs), policy, restartedAt)?.type).toBe("drain.timeout");
  });

  it("a claim is due on an eligible thread, nothing on a paused one", () => {
    const t = Thread.holding(policy, "a");
    expect(drainCommandDue(t.state, t.now, policy, 0)).toEqual({ type: "drain.claim" });
    t.ok({ type: "queue.pause" });
    expect(drainCommandDue(t.state, t.now, policy, 0)).toBeNull();
  });
});

describe("a sending item is frozen", () => {
  it("only while it is sending", () => {
    const t = Thread.holding(policy, "a");
    expect(isFrozen(t.item("a"))).toBe(false);
    t.claim();
    expect(isFrozen(t.item("a"))).toBe(true);
    t.startFailed("a", false);
    expect(isFrozen(t.item("a"))).toBe(false);
  });
});

describe("which commands claim", () => {
  /** On a ready thread holding "a", unclaimed: does `input`, after `setup`, claim? */
  const claims = (input: CommandInput, setup: (t: Thread) => void = () => {}) => {
    const t = Thread.holding(policy, "a");
    setup(t);
    return t.ok(input).some((e) => e.type === "queue.item-send-started");
  };
  const paused = (t: Thread) => void t.ok({ type: "queue.pause" });

  it("the domain declares exactly the commands whose decision claims an item", () => {
    const cases: [CommandInput, boolean, ((t: Thread) => void)?][] = [
      [{ type: "drain.claim" }, true],
      // Each of these on a paused thread, so that what it does is its own and not the drain's.
      [{ type: "queue.sendNow", queueItemId: "a" }, true, paused],
      [{ type: "queue.setDelivery", queueItemId: "a", delivery: "steer" }, true, paused],
      [{ type: "queue.setDelivery", queueItemId: "a", delivery: "interrupt" }, true, paused],
      [
        { type: "queue.setDelivery", queueItemId: "a", delivery: "queue" },
        false,
        (t) => {
          // A waiting steer (marked while the session could not take it) set back to queue.
          paused(t);
          t.ok({ type: "agent.session", status: "starting" });
          t.ok({ type: "queue.setDelivery", queueItemId: "a", delivery: "steer" });
        },
      ],
      [{ type: "queue.add", queueItemId: "b", message: { messageId: "mb", text: "now" }, delivery: "steer" }, true, paused],
      [{ type: "queue.add", queueItemId: "b", message: { messageId: "mb", text: "now" }, delivery: "interrupt" }, true, paused],
      // An add, a turn's end, a session's ready report: the drain's claim goes in the same decision.
      [{ type: "queue.add", queueItemId: "b", message: { messageId: "mb", text: "later" } }, true],
      [
        { type: "agent.turnEnded", turnId: "turn1", outcome: "completed" },
        true,
        (t) => {
          t.claim();
          t.started("a", "turn1");
          t.add("b");
        },
      ],
      [{ type: "agent.session", status: "ready" }, true, (t) => void t.ok({ type: "agent.session", status: "starting" })],
      [{ type: "queue.resume" }, false, paused],
      [{ type: "queue.setMode", mode: "auto" }, false, paused],
      [{ type: "drain.resume" }, false, paused],
    ];
    for (const [input, claimed, setup] of cases) {
      expect(claims(input, setup), input.type).toBe(claimed);
      expect(mayClaim(Command.parse(input)), input.type).toBe(claimed);
    }
  });
});
