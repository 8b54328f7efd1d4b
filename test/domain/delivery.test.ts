import { describe, expect, it } from "vitest";
import { Thread, claimOf, types } from "./harness.js";

const sendNow = (t: Thread, queueItemId: string) => t.run({ type: "queue.sendNow", queueItemId });
const setDelivery = (t: Thread, queueItemId: string, delivery: "queue" | "steer" | "interrupt") =>
  t.run({ type: "queue.setDelivery", queueItemId, delivery });

/** Ready thread, paused by the user, holding `ids`. */
function held(...ids: string[]): Thread {
  const t = Thread.ready();
  t.ok({ type: "queue.pause" });
  for (const id of ids) t.add(id);
  return t;
}

/** q1's turn "turn1" is running; q2 and q3 wait. */
function midTurn(): Thread {
  const t = Thread.ready();
  for (const id of ["q1", "q2", "q3"]) t.add(id);
  t.claim();
  t.started("q1", "turn1");
  return t;
}

describe("steer", () => {
  it("into a running turn: dispatched at once as a steer with the expected turn id", () => {
    const t = midTurn();
    const events = t.add("q4", "also check the docs", { delivery: "steer" });
    expect(types(events)).toEqual(["queue.item-added", "queue.item-send-started"]);
    expect(claimOf(events as never)).toMatchObject({ queueItemId: "q4", kind: "steer", expectedTurnId: "turn1" });
    expect(t.item("q4")).toMatchObject({ status: "sending", dispatchKind: "steer", delivery: "steer" });
  });

  it("an accepted steer resolves into the running turn without starting a new one; the queue goes on after it", () => {
    const t = midTurn();
    sendNow(t, "q3");
    expect(types(t.started("q3", "turn1"))).toEqual(["queue.item-resolved", "message.sent"]);
    expect(t.state.session.activeTurnId).toBe("turn1");
    expect(t.claim()).toEqual([]);
    expect(claimOf(t.ended("turn1")).queueItemId).toBe("q2");
  });

  it("when idle: the next turn, ahead of the head", () => {
    const t = Thread.ready();
    t.ok({ type: "agent.session", status: "starting" });
    t.add("q1");
    t.add("q2");
    expect(types(setDelivery(t, "q2", "steer"))).toEqual(["queue.item-delivery-changed"]);
    expect(claimOf(t.ready())).toMatchObject({ queueItemId: "q2", kind: "turn", expectedTurnId: null, attempt: 1 });
    expect(t.item("q1").status).toBe("pending");
  });

  it("steers keep their order among themselves, whatever order they were marked in", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.pause" });
    for (const id of ["a", "b", "c", "d"]) t.add(id);
    t.ok({ type: "agent.session", status: "starting" });
    setDelivery(t, "d", "steer");
    setDelivery(t, "b", "steer");
    // They pass the user's pause one after another, in queue order; the pause stays for "a" and "c".
    // The ready report claims the first; each turn's end claims the next in its own decision.
    const sent: string[] = [];
    let claimed = t.ready();
    for (let k = 0; k < 2; k++) {
      const id = claimOf(claimed).queueItemId;
      sent.push(id);
      t.started(id, `turn-${id}`);
      claimed = t.ended(`turn-${id}`);
    }
    expect(sent).toEqual(["b", "d"]);
    expect(claimed).toHaveLength(1);
    expect(t.claim()).toEqual([]);
    expect(t.state.pauseReason).toBe("user");
  });

  it("a steer added while another item is being sent waits, then goes first", () => {
    const t = Thread.ready();
    t.add("q1");
    t.add("q2");
    t.claim();
    expect(types(t.add("q3", "urgent", { delivery: "steer" }))).toEqual(["queue.item-added"]);
    t.started("q1", "turn1");
    // q1's turn runs now: the drain steers q3 into it.
    expect(claimOf(t.claim())).toMatchObject({ queueItemId: "q3", kind: "steer", expectedTurnId: "turn1" });
  });

  it("a steer reported started for another turn is refused (STEER_TURN_MISMATCH)", () => {
    const t = midTurn();
    sendNow(t, "q3");
    expect(t.refused({ type: "agent.turnStarted", queueItemId: "q3", turnId: "turn2" })).toBe("STEER_TURN_MISMATCH");
  });

  it("a rejected steer fails in place, with the reason, and holds the queue", () => {
    const t = midTurn();
    sendNow(t, "q3");
    expect(types(t.startFailed("q3", true, "turn already finishing"))).toContain("queue.item-send-failed");
    expect(t.item("q3")).toMatchObject({ status: "failed", failureReason: "turn already finishing" });
    expect(t.order()).toEqual(["q2", "q3"]);
    expect(t.state.pauseReason).toBe("failure");
    t.ended("turn1");
    expect(t.claim()).toEqual([]);
  });

  it("passes the user's pause, which stays for the rest of the queue", () => {
    const t = held("q1", "q2");
    expect(types(sendNow(t, "q2"))).toEqual(["queue.item-delivery-changed", "queue.item-send-started"]);
    expect(t.state).toMatchObject({ paused: true, pauseReason: "user" });
    t.started("q2", "turn1");
    t.ended("turn1");
    expect(t.claim()).toEqual([]);
  });

  it("passes an interrupted hold and lifts it: the queue continues after this item", () => {
    const t = midTurn();
    t.ended("turn1", "interrupted");
    expect(types(sendNow(t, "q3"))).toEqual(["queue.item-delivery-changed", "queue.resumed", "queue.item-send-started"]);
    expect(t.state.paused).toBe(false);
    t.started("q3", "turn2");
    expect(claimOf(t.ended("turn2")).queueItemId).toBe("q2");
  });

  it("of a failed item queues it again and sends it: requeued, the hold released, attempt 1", () => {
    const t = Thread.ready();
    t.add("q1");
    t.add("q2");
    t.claim();
    t.startFailed("q1", false);
    const events = sendNow(t, "q1");
    expect(types(events)).toEqual(["queue.item-delivery-changed", "queue.item-requeued", "queue.resumed", "queue.item-send-started"]);
    expect(claimOf(events as never).attempt).toBe(1);
    // The claim's dispatch id is built from its own version: it matches what evolve stored.
    expect(t.item("q1").dispatchId).toBe(claimOf(events as never).dispatchId);
  });

  it("of a pending item during a failure hold lifts the hold: the user continues past the failed item", () => {
    const t = Thread.ready();
    for (const id of ["q1", "q2", "q3"]) t.add(id);
    t.claim();
    t.startFailed("q1", false);
    expect(types(sendNow(t, "q2"))).toEqual(["queue.item-delivery-changed", "queue.resumed", "queue.item-send-started"]);
    t.started("q2", "turn1");
    expect(claimOf(t.ended("turn1")).queueItemId).toBe("q3");
    expect(t.item("q1").status).toBe("failed");
  });

  it("waits while its session is not ready, and goes when it is", () => {
    const t = held("q1");
    t.ok({ type: "agent.session", status: "starting" });
    expect(types(sendNow(t, "q1"))).toEqual(["queue.item-delivery-changed"]);
    expect(claimOf(t.ready())).toMatchObject({ queueItemId: "q1", kind: "turn" });
  });

  it("repeated changes nothing more", () => {
    const t = held("q1");
    t.ok({ type: "agent.session", status: "starting" });
    sendNow(t, "q1");
    expect(sendNow(t, "q1")).toEqual([]);
    expect(setDelivery(t, "q1", "steer")).toEqual([]);
  });
});

describe("interrupt", () => {
  it("with a running turn: asks the runtime to stop it, then goes first as a new turn once it ended", () => {
    const t = midTurn();
    const events = t.add("q4", "stop, do this instead", { delivery: "interrupt" });
    expect(types(events)).toEqual(["queue.item-added", "thread.interrupt-requested"]);
    expect(events).toContainEqual(expect.objectContaining({ payload: expect.objectContaining({ turnId: "turn1" }) }));
    // Nothing more while the turn is being stopped: no steer into it, no second request.
    expect(t.claim()).toEqual([]);
    // It passes the hold its turn's end puts on the queue, and lifts it, in the same decision.
    const claimed = t.ended("turn1", "interrupted");
    expect(types(claimed)).toEqual(["turn.ended", "queue.paused", "queue.resumed", "queue.item-send-started"]);
    expect(claimOf(claimed)).toMatchObject({ queueItemId: "q4", kind: "turn", expectedTurnId: null });
    t.started("q4", "turn2");
    expect(claimOf(t.ended("turn2")).queueItemId).toBe("q2");
  });

  it("when idle: simply the next turn", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.pause" });
    t.add("q1");
    t.add("q2");
    const events = setDelivery(t, "q2", "interrupt");
    expect(types(events)).toEqual(["queue.item-delivery-changed", "queue.item-send-started"]);
    expect(claimOf(events as never)).toMatchObject({ queueItemId: "q2", kind: "turn" });
  });

  it("goes before steers", () => {
    const t = held("a", "b");
    t.ok({ type: "agent.session", status: "starting" });
    setDelivery(t, "a", "steer");
    setDelivery(t, "b", "interrupt");
    expect(claimOf(t.ready()).queueItemId).toBe("b");
  });
});

describe("setDelivery", () => {
  it("back to queue: the item waits for its turn again", () => {
    const t = held("q1", "q2");
    t.ok({ type: "agent.session", status: "starting" });
    setDelivery(t, "q2", "steer");
    expect(types(setDelivery(t, "q2", "queue"))).toEqual(["queue.item-delivery-changed"]);
    t.ok({ type: "queue.resume" });
    expect(claimOf(t.ready()).queueItemId).toBe("q1");
  });

  it("of a failed item to queue changes only its delivery: it stays failed", () => {
    const t = Thread.ready();
    t.add("q1", "x", { delivery: "steer" });
    t.startFailed("q1", false);
    expect(types(setDelivery(t, "q1", "queue"))).toEqual(["queue.item-delivery-changed"]);
    expect(t.item("q1")).toMatchObject({ status: "failed", delivery: "queue" });
  });

  it("of an item being sent is refused (ITEM_SENDING), also as send-now", () => {
    const t = Thread.ready();
    t.add("q1");
    t.claim();
    expect(t.refused({ type: "queue.setDelivery", queueItemId: "q1", delivery: "interrupt" })).toBe("ITEM_SENDING");
    expect(t.refused({ type: "queue.sendNow", queueItemId: "q1" })).toBe("ITEM_SENDING");
  });

  it("of an unknown item is refused (ITEM_NOT_FOUND)", () => {
    expect(held().refused({ type: "queue.setDelivery", queueItemId: "nope", delivery: "steer" })).toBe("ITEM_NOT_FOUND");
  });

  it("carries the item's messageId on its event", () => {
    const t = held("q1");
    const [changed] = setDelivery(t, "q1", "queue" === t.item("q1").delivery ? "steer" : "queue") as never[];
    expect(changed).toMatchObject({ type: "queue.item-delivery-changed", payload: { queueItemId: "q1", messageId: "m-q1" } });
  });
});
