import { describe, expect, it } from "vitest";
import { defaultDrainPolicy, snapshotOf } from "../../src/domain/index.js";
import { Thread, claimOf, types } from "./harness.js";

/** A thread that queues without draining (paused by the user). */
function held(): Thread {
  const t = Thread.ready();
  t.ok({ type: "queue.pause" });
  return t;
}

describe("enqueue", () => {
  it("adds a pending item with the message, its attachments and the options the user saw", () => {
    const t = held();
    const attachments = [{ name: "screenshot.png", mimeType: "image/png", size: 1234 }];
    const options = { model: "gpt-5", mode: "plan", effort: "high", sandbox: true };
    t.ok({ type: "queue.add", queueItemId: "q1", message: { messageId: "m1", text: "fix the tests", attachments }, options });
    expect(snapshotOf(t.state).queue.items).toEqual([
      expect.objectContaining({
        queueItemId: "q1", messageId: "m1", text: "fix the tests", attachments, options,
        status: "pending", failureReason: null, attempts: 0,
      }),
    ]);
  });

  it("defaults to no attachments and no options", () => {
    const t = held();
    t.add("q1");
    expect(t.item("q1")).toMatchObject({ attachments: [], options: {} });
  });

  it("is idempotent by messageId: the same message again emits nothing and keeps the one item", () => {
    const t = held();
    t.ok({ type: "queue.add", queueItemId: "q1", message: { messageId: "m1", text: "hello" } });
    expect(t.ok({ type: "queue.add", queueItemId: "q1-retry", message: { messageId: "m1", text: "hello" } })).toEqual([]);
    expect([...t.state.items.keys()]).toEqual(["q1"]);
    expect(t.state.messages.get("m1")).toMatchObject({ queueItemId: "q1", fate: "queued" });
  });

  it("refuses the same messageId with another text (MESSAGE_ID_REUSED)", () => {
    const t = held();
    t.ok({ type: "queue.add", queueItemId: "q1", message: { messageId: "m1", text: "hello" } });
    expect(t.run({ type: "queue.add", queueItemId: "q2", message: { messageId: "m1", text: "goodbye" } })).toMatchObject({
      reason: "MESSAGE_ID_REUSED", kind: "conflict",
    });
  });

  it("stays idempotent after the item was sent: a late retry of the add does not send it again", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.add", queueItemId: "q1", message: { messageId: "m1", text: "hello" } });
    t.claim();
    t.started("q1", "turn1");
    expect(t.state.messages.get("m1")?.fate).toBe("sent");
    expect(t.ok({ type: "queue.add", queueItemId: "q9", message: { messageId: "m1", text: "hello" } })).toEqual([]);
    expect(t.state.items.size).toBe(0);
    expect(t.refused({ type: "queue.add", queueItemId: "q9", message: { messageId: "m1", text: "other" } })).toBe("MESSAGE_ID_REUSED");
  });

  it("stays idempotent after the item was removed: a late retry does not bring it back", () => {
    const t = held();
    t.ok({ type: "queue.add", queueItemId: "q1", message: { messageId: "m1", text: "hello" } });
    t.ok({ type: "queue.remove", queueItemId: "q1" });
    expect(t.state.messages.get("m1")?.fate).toBe("removed");
    expect(t.ok({ type: "queue.add", queueItemId: "q9", message: { messageId: "m1", text: "hello" } })).toEqual([]);
    expect(t.state.items.size).toBe(0);
    expect(t.refused({ type: "queue.add", queueItemId: "q9", message: { messageId: "m1", text: "other" } })).toBe("MESSAGE_ID_REUSED");
  });

  it("judges sameness by the text first queued, not by later edits", () => {
    const t = held();
    t.ok({ type: "queue.add", queueItemId: "q1", message: { messageId: "m1", text: "hello" } });
    t.ok({ type: "queue.edit", queueItemId: "q1", text: "hello, edited" });
    expect(t.ok({ type: "queue.add", queueItemId: "q1", message: { messageId: "m1", text: "hello" } })).toEqual([]);
    expect(t.item("q1")?.text).toBe("hello, edited");
  });

  it("refuses a queue item id that already names another message (ITEM_EXISTS)", () => {
    const t = held();
    t.ok({ type: "queue.add", queueItemId: "q1", message: { messageId: "m1", text: "first" } });
    expect(t.run({ type: "queue.add", queueItemId: "q1", message: { messageId: "m2", text: "second" } })).toMatchObject({
      reason: "ITEM_EXISTS", kind: "conflict",
    });
    expect(t.item("q1")?.text).toBe("first");
  });

  it("refuses a queue item id of a message already sent (ITEM_EXISTS): ids are never reused", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.add", queueItemId: "q1", message: { messageId: "m1", text: "first" } });
    t.claim();
    t.started("q1", "turn1");
    expect(t.refused({ type: "queue.add", queueItemId: "q1", message: { messageId: "m2", text: "second" } })).toBe("ITEM_EXISTS");
  });

  it("appends in order: each new item goes after the last one", () => {
    const t = held();
    for (const id of ["c", "a", "b", "e", "d"]) t.add(id);
    expect(t.order()).toEqual(["c", "a", "b", "e", "d"]);
    const positions = snapshotOf(t.state).queue.items.map((i) => i.position);
    expect([...positions].sort()).toEqual(positions);
    expect(new Set(positions).size).toBe(5);
  });

  it("appends after an item moved to the end, not after the newest", () => {
    const t = held();
    t.add("a");
    t.add("b");
    t.ok({ type: "queue.move", queueItemId: "a", to: { afterId: "b" } });
    t.add("c");
    expect(t.order()).toEqual(["b", "a", "c"]);
  });

  it("a steer is added at the tail, after the steers queued before it, and waits while the agent cannot take it", () => {
    const t = held();
    t.add("b");
    t.add("c");
    t.ok({ type: "agent.session", status: "starting" });
    expect(types(t.add("d", "urgent", { delivery: "steer" }))).toEqual(["queue.item-added"]);
    expect(t.order()).toEqual(["b", "c", "d"]);
    expect(t.item("d")).toMatchObject({ status: "pending", delivery: "steer" });
  });

  it("a steer on an idle ready thread dispatches the new message at once", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.pause" });
    t.add("a");
    const events = t.add("now", "do this first", { delivery: "steer" });
    expect(types(events)).toEqual(["queue.item-added", "queue.item-send-started"]);
    expect(claimOf(events as never)).toMatchObject({ queueItemId: "now", kind: "turn", attempt: 1 });
  });

  it("records who queued it: the author the procedure took from the token, with the name the client gave", () => {
    const t = held();
    t.add("a", "x", { author: { sub: "alice", name: "Alice" } });
    t.add("b", "y", { author: null });
    expect(t.item("a").author).toEqual({ sub: "alice", name: "Alice" });
    expect(t.item("b").author).toBeNull();
    expect(snapshotOf(t.state).queue.items[0]).toMatchObject({ queueItemId: "a", author: { sub: "alice", name: "Alice" }, delivery: "queue" });
  });
});

describe("bounded queue", () => {
  const small = () => {
    const t = new Thread("t1", { ...defaultDrainPolicy, maxQueueItems: 2 });
    t.create();
    return t;
  };

  it("one item more than the maximum is refused (QUEUE_FULL) and changes nothing", () => {
    const t = small();
    t.add("a");
    t.add("b");
    expect(t.refused({ type: "queue.add", queueItemId: "c", message: { messageId: "m-c", text: "c" } })).toBe("QUEUE_FULL");
    expect(t.order()).toEqual(["a", "b"]);
  });

  it("a failed item still takes its place; a removed one frees it", () => {
    const t = small();
    t.ready();
    t.add("a");
    t.add("b");
    t.claim();
    t.startFailed("a", false);
    expect(t.refused({ type: "queue.add", queueItemId: "c", message: { messageId: "m-c", text: "c" } })).toBe("QUEUE_FULL");
    t.ok({ type: "queue.remove", queueItemId: "a" });
    // The removal released the failure hold: the add claims "b", the head, in the same decision.
    expect(types(t.add("c"))).toEqual(["queue.item-added", "queue.item-send-started"]);
    expect(t.item("b").status).toBe("sending");
  });

  it("a retried add of a known message still answers its item when full", () => {
    const t = small();
    t.add("a");
    t.add("b");
    expect(t.add("a-again", "text of a", { message: { messageId: "m-a", text: "text of a" } })).toEqual([]);
  });
});
