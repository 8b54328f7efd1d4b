import { describe, expect, it } from "vitest";
import { Thread, claimOf, types } from "./harness.js";

/** q1's turn "turn1" is running; q2 waits. */
function midTurn(): Thread {
  const t = Thread.ready();
  t.add("q1");
  t.add("q2");
  t.claim();
  t.started("q1", "turn1");
  return t;
}

describe("the agent's runtime session id", () => {
  it("is stored with the thread and sent on every later dispatch, and a report without one keeps it", () => {
    const t = Thread.ready();
    expect(claimOf(t.add("q1") as never).runtimeSessionId).toBeNull();
    t.ok({ type: "agent.session", status: "ready", runtimeSessionId: "codex-thread-1" });
    t.started("q1", "turn1");
    t.ended("turn1");
    // A restarted runtime reports its sessions without knowing their ids.
    t.ok({ type: "agent.session", status: "stopped", error: "the agent runtime restarted" });
    t.ready();
    expect(t.state.session.runtimeSessionId).toBe("codex-thread-1");
    expect(claimOf(t.add("q2") as never)).toMatchObject({ queueItemId: "q2", runtimeSessionId: "codex-thread-1" });
  });

  it("a new id on an unchanged status is recorded", () => {
    const t = Thread.ready();
    expect(types(t.run({ type: "agent.session", status: "ready", runtimeSessionId: "s2" }))).toEqual(["session.changed"]);
    expect(t.run({ type: "agent.session", status: "ready", runtimeSessionId: "s2" })).toEqual([]);
  });
});

describe("thread.interrupt", () => {
  it("requests the running turn's stop once; the turn ending interrupted pauses the queue", () => {
    const t = midTurn();
    const events = t.ok({ type: "thread.interrupt" });
    expect(events).toEqual([
      { type: "thread.interrupt-requested", payload: { turnId: "turn1", dispatchId: expect.any(String), runtimeSessionId: null } },
    ]);
    expect(t.run({ type: "thread.interrupt" })).toEqual([]);
    t.ended("turn1", "interrupted");
    expect(t.state).toMatchObject({ paused: true, pauseReason: "interrupted" });
    expect(t.state.session.interruptRequested).toBeNull();
    expect(t.item("q2")?.status).toBe("pending");
  });

  it("is refused when no turn runs, changing nothing", () => {
    const t = Thread.ready();
    expect(t.refused({ type: "thread.interrupt" })).toBe("NO_ACTIVE_TURN");
  });

  it("each turn gets its own interrupt dispatch", () => {
    const t = midTurn();
    const [first] = t.ok({ type: "thread.interrupt" });
    t.ended("turn1", "interrupted");
    t.ok({ type: "queue.resume" });
    t.claim();
    t.started("q2", "turn2");
    const [second] = t.ok({ type: "thread.interrupt" });
    expect(second).toMatchObject({ payload: { turnId: "turn2" } });
    expect((second as { payload: { dispatchId: string } }).payload.dispatchId).not.toBe(
      (first as { payload: { dispatchId: string } }).payload.dispatchId,
    );
  });
});
