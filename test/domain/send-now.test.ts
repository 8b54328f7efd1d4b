import { describe, expect, it } from "vitest";
import { Thread, claimOf, types } from "./harness.js";

const sendNow = (t: Thread, queueItemId: string) => t.run({ type: "queue.sendNow", queueItemId });

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

describe("send now", () => {
  it("on an idle ready session dispatches the chosen item as a turn, ahead of the head", () => {
    const t = Thread.ready();
    t.ok({ type: "agent.session", status: "starting" });
    t.add("q1");
    t.add("q2");
    t.ready();
    const events = sendNow(t, "q2");
    expect(types(events)).toEqual(["queue.item-send-started"]);
    expect(claimOf(events as never)).toMatchObject({ queueItemId: "q2", kind: "turn", expectedTurnId: null, attempt: 1 });
    expect(t.item("q1")?.status).toBe("pending");
  });

  it("mid-turn sends the item as a steer with the expected turn id", () => {
    const t = midTurn();
    const events = sendNow(t, "q3");
    expect(claimOf(events as never)).toMatchObject({ queueItemId: "q3", kind: "steer", expectedTurnId: "turn1" });
    expect(t.item("q3")).toMatchObject({ status: "sending", dispatchKind: "steer" });
  });

  it("an accepted steer resolves the item into the running turn without starting a new one", () => {
    const t = midTurn();
    sendNow(t, "q3");
    expect(types(t.started("q3", "turn1"))).toEqual(["queue.item-resolved", "message.sent"]);
    expect(t.state.session.activeTurnId).toBe("turn1");
    // The running turn still has to end before the next item goes.
    expect(t.claim()).toEqual([]);
    t.ended("turn1");
    expect(claimOf(t.claim()).queueItemId).toBe("q2");
  });

  it("a steer reported started for another turn is refused (STEER_TURN_MISMATCH)", () => {
    const t = midTurn();
    sendNow(t, "q3");
    expect(t.refused({ type: "agent.turnStarted", queueItemId: "q3", turnId: "turn2" })).toBe("STEER_TURN_MISMATCH");
  });

  it("a rejected steer goes back to its old position as failed, with the reason, and holds the queue", () => {
    const t = midTurn();
    sendNow(t, "q3");
    expect(types(t.startFailed("q3", true, "turn already finishing"))).toContain("queue.item-send-failed");
    expect(t.item("q3")).toMatchObject({ status: "failed", failureReason: "turn already finishing" });
    expect(t.order()).toEqual(["q2", "q3"]);
    // Like any start failure it holds the queue: q2 does not overtake the item the user wanted first.
    expect(t.state.pauseReason).toBe("failure");
    t.ended("turn1");
    expect(t.claim()).toEqual([]);
  });

  it("bypasses a user pause, and the pause stays for the rest of the queue", () => {
    const t = held("q1", "q2");
    expect(types(sendNow(t, "q2"))).toEqual(["queue.item-send-started"]);
    expect(t.state).toMatchObject({ paused: true, pauseReason: "user" });
    t.started("q2", "turn1");
    t.ended("turn1");
    expect(t.claim()).toEqual([]);
  });

  it("clears an interrupted pause: the queue continues after this item", () => {
    const t = midTurn();
    t.ended("turn1", "interrupted");
    expect(types(sendNow(t, "q3"))).toEqual(["queue.resumed", "queue.item-send-started"]);
    expect(t.state.paused).toBe(false);
    t.started("q3", "turn2");
    t.ended("turn2");
    expect(claimOf(t.claim()).queueItemId).toBe("q2");
  });

  it("sends a failed item again: requeued, the hold released, attempt 1", () => {
    const t = Thread.ready();
    t.add("q1");
    t.add("q2");
    t.claim();
    t.startFailed("q1", false);
    const events = sendNow(t, "q1");
    expect(types(events)).toEqual(["queue.item-requeued", "queue.resumed", "queue.item-send-started"]);
    expect(claimOf(events as never).attempt).toBe(1);
  });

  it("of a pending item during a failure hold lifts the hold: the user continues past the failed item", () => {
    const t = Thread.ready();
    t.add("q1");
    t.add("q2");
    t.add("q3");
    t.claim();
    t.startFailed("q1", false);
    expect(types(sendNow(t, "q2"))).toEqual(["queue.resumed", "queue.item-send-started"]);
    t.started("q2", "turn1");
    t.ended("turn1");
    expect(claimOf(t.claim()).queueItemId).toBe("q3");
    expect(t.item("q1")?.status).toBe("failed");
  });

  it("does not wait for a retry backoff", () => {
    const t = Thread.ready();
    t.add("q1");
    t.claim();
    t.startFailed("q1", true);
    expect(t.claim()).toEqual([]);
    expect(claimOf(sendNow(t, "q1") as never)).toMatchObject({ queueItemId: "q1", attempt: 2 });
  });

  it("is refused while another item is being sent (DISPATCH_IN_FLIGHT)", () => {
    const t = Thread.ready();
    t.add("q1");
    t.add("q2");
    t.claim();
    expect(t.refused({ type: "queue.sendNow", queueItemId: "q2" })).toBe("DISPATCH_IN_FLIGHT");
  });

  it("is refused for the item already being sent (ITEM_SENDING)", () => {
    const t = Thread.ready();
    t.add("q1");
    t.claim();
    expect(t.refused({ type: "queue.sendNow", queueItemId: "q1" })).toBe("ITEM_SENDING");
  });

  it.each(["starting", "running", "stopped", "error"] as const)("is refused when the session is %s and no turn runs (SESSION_NOT_READY)", (status) => {
    const t = held("q1");
    t.ok({ type: "agent.session", status });
    expect(t.refused({ type: "queue.sendNow", queueItemId: "q1" })).toBe("SESSION_NOT_READY");
  });

  it("is refused before any session report (SESSION_NOT_READY)", () => {
    const t = new Thread();
    t.create();
    t.add("q1");
    expect(t.refused({ type: "queue.sendNow", queueItemId: "q1" })).toBe("SESSION_NOT_READY");
  });

  it("is refused for an unknown item (ITEM_NOT_FOUND)", () => {
    expect(held().refused({ type: "queue.sendNow", queueItemId: "nope" })).toBe("ITEM_NOT_FOUND");
  });

  it("queue.add with sendNow mid-turn steers the new message into the running turn", () => {
    const t = midTurn();
    const events = t.add("q4", "also check the docs", { sendNow: true });
    expect(types(events)).toEqual(["queue.item-added", "queue.item-send-started"]);
    expect(claimOf(events as never)).toMatchObject({ queueItemId: "q4", kind: "steer", expectedTurnId: "turn1" });
    expect(t.order()[0]).toBe("q4");
  });

  it("queue.add with sendNow while another item is being sent waits at the head", () => {
    const t = Thread.ready();
    t.add("q1");
    t.add("q2");
    t.claim();
    expect(types(t.add("q3", "urgent", { sendNow: true }))).toEqual(["queue.item-added"]);
    expect(t.order()).toEqual(["q3", "q1", "q2"]);
    t.started("q1", "turn1");
    t.ended("turn1");
    expect(claimOf(t.claim()).queueItemId).toBe("q3");
  });

  it("queue.add with sendNow after an interrupt resumes and dispatches the new message", () => {
    const t = midTurn();
    t.ended("turn1", "interrupted");
    const events = t.add("q4", "try again differently", { sendNow: true });
    expect(types(events)).toEqual(["queue.item-added", "queue.resumed", "queue.item-send-started"]);
    // The claim's dispatch id is built from its own version: check it matches what evolve stored.
    expect(t.item("q4")?.dispatchId).toBe(claimOf(events as never).dispatchId);
  });
});
