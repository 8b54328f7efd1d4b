import { describe, expect, it } from "vitest";
import { messageStatus } from "../../src/domain/index.js";
import { Thread } from "./harness.js";

/**
 * `queue.status`: what became of a message, read from the thread's state. A sent message's
 * turn outcome is not the state's (the procedure reads it from the Turn projection:
 * test/e2e/queue-semantics.test.ts).
 */
describe("the fate of a message", () => {
  const status = (t: Thread, id: string) => messageStatus(t.state, `m-${id}`);

  it("through each fate: queued (its place in the order items will go), sending, sent (its turn, whatever the turn's end), failed, removed, unknown", () => {
    const t = Thread.ready();
    t.ok({ type: "agent.session", status: "starting" });
    for (const id of ["a", "b", "c", "d"]) t.add(id);
    t.run({ type: "queue.setDelivery", queueItemId: "c", delivery: "steer" });
    expect(status(t, "c")).toEqual({ state: "queued", queueItemId: "c", position: 1 });
    expect(status(t, "a")).toEqual({ state: "queued", queueItemId: "a", position: 2 });
    expect(status(t, "d")).toEqual({ state: "queued", queueItemId: "d", position: 4 });
    t.ready();
    t.claim();
    expect(status(t, "c")).toEqual({ state: "sending", queueItemId: "c" });
    expect(status(t, "a")).toMatchObject({ state: "queued", position: 1 });
    t.started("c", "turn1");
    expect(status(t, "c")).toEqual({ state: "sent", queueItemId: "c", turnId: "turn1" });
    t.ended("turn1", "interrupted");
    expect(status(t, "c")).toEqual({ state: "sent", queueItemId: "c", turnId: "turn1" });
    t.ok({ type: "queue.resume" });
    t.claim();
    t.startFailed("a", false, "the agent refused it");
    expect(status(t, "a")).toEqual({ state: "failed", queueItemId: "a", reason: "the agent refused it" });
    t.ok({ type: "queue.remove", queueItemId: "b" });
    expect(status(t, "b")).toEqual({ state: "removed", queueItemId: "b" });
    expect(status(t, "never")).toEqual({ state: "unknown" });
  });
});
