import { describe, expect, it } from "vitest";
import { compareOrder, isValidPositionKey, keyBetween, snapshotOf } from "../../src/domain/index.js";
import { Thread, types } from "./harness.js";

/** A paused thread (nothing drains) holding items `ids` in that order. */
function queue(...ids: string[]): Thread {
  const t = Thread.ready();
  t.ok({ type: "queue.pause" });
  for (const id of ids) t.add(id);
  return t;
}

const move = (t: Thread, queueItemId: string, afterId: string | null) =>
  t.run({ type: "queue.move", queueItemId, to: { afterId } });
const place = (t: Thread, queueItemId: string, position: string) =>
  t.run({ type: "queue.move", queueItemId, to: { position } });

/** A thread with an item being sent: q1 claimed, q2 and q3 behind it. */
function sending(): Thread {
  const t = Thread.ready();
  t.add("q1");
  t.add("q2");
  t.add("q3");
  t.claim();
  return t;
}

/** A thread whose q1 has failed permanently (and holds the queue). */
function failed(): Thread {
  const t = Thread.ready();
  t.add("q1");
  t.add("q2");
  t.claim();
  t.startFailed("q1", false);
  return t;
}

describe("move", () => {
  it("moves an item to the head with afterId null", () => {
    const t = queue("a", "b", "c");
    expect(types(move(t, "c", null))).toEqual(["queue.item-moved"]);
    expect(t.order()).toEqual(["c", "a", "b"]);
  });

  it("moves an item right after another", () => {
    const t = queue("a", "b", "c", "d");
    move(t, "a", "c");
    expect(t.order()).toEqual(["b", "c", "a", "d"]);
  });

  it("moves an item to the end (after the last one)", () => {
    const t = queue("a", "b", "c");
    move(t, "a", "c");
    expect(t.order()).toEqual(["b", "c", "a"]);
  });

  it("refuses to move an item after itself (INVALID_MOVE)", () => {
    const t = queue("a", "b");
    expect(t.refused({ type: "queue.move", queueItemId: "a", to: { afterId: "a" } })).toBe("INVALID_MOVE");
  });

  it("refuses an afterId that is not in the queue (ITEM_NOT_FOUND)", () => {
    const t = queue("a", "b");
    expect(t.refused({ type: "queue.move", queueItemId: "a", to: { afterId: "nope" } })).toBe("ITEM_NOT_FOUND");
  });

  it("refuses to move an unknown item (ITEM_NOT_FOUND)", () => {
    const t = queue("a");
    expect(move(t, "nope", null)).toMatchObject({ reason: "ITEM_NOT_FOUND", kind: "not_found" });
  });

  it("is a no-op when the item is already there (head to head, after its own predecessor)", () => {
    const t = queue("a", "b", "c");
    expect(move(t, "a", null)).toEqual([]);
    expect(move(t, "c", "b")).toEqual([]);
    expect(move(t, "b", "a")).toEqual([]);
  });

  it("places an item at a raw position key written in the Yjs document", () => {
    const t = queue("a", "b", "c");
    const between = keyBetween(t.item("a")!.position, t.item("b")!.position);
    expect(place(t, "c", between)).toEqual([{ type: "queue.item-moved", payload: { queueItemId: "c", messageId: "m-c", position: between } }]);
    expect(t.order()).toEqual(["a", "c", "b"]);
  });

  it("ignores a raw position equal to the item's own", () => {
    const t = queue("a");
    expect(place(t, "a", t.item("a")!.position)).toEqual([]);
  });

  it.each(["a", "b0", "a00", "A00000000000000000000000000", "0a", "a0!", "a!", "a0 ", "aé", "a0-1", "a 0"])(
    "refuses the raw position %j: not a fractional-indexing key (INVALID_POSITION)",
    (key) => {
      const t = queue("a", "b");
      expect(place(t, "a", key)).toMatchObject({ reason: "INVALID_POSITION", kind: "conflict" });
    },
  );

  it.each(["a0", "a1", "Zz", "a0V", "b10", "zzzzzzzzzzzzzzzzzzzzzzzzzzz"])("accepts the raw position %j", (key) => {
    expect(isValidPositionKey(key)).toBe(true);
  });

  it("keeps every later key on the right side of a client-written key (no digit outside base 62 gets in)", () => {
    // fractional-indexing alone accepts "a0!" ('!' < '0'), and the key it then puts
    // between "a0" and "a0!" sorts after "a0!": the queue would come out misordered.
    expect(isValidPositionKey("a0!")).toBe(false);
  });

  it("orders items with the same position key by id (two devices wrote the same key)", () => {
    const t = queue("a", "b", "c");
    const key = t.item("a")!.position;
    place(t, "c", key);
    expect(t.order()).toEqual(["a", "c", "b"]);
    const items = snapshotOf(t.state).queue.items;
    expect(items.map((i) => i.queueItemId)).toEqual(["a", "c", "b"]);
  });

  it("moves an item between two items that share a key, exactly where asked", () => {
    const t = queue("a", "c", "x", "z");
    place(t, "c", t.item("a")!.position); // a and c tie; order a, c by id
    expect(t.order()).toEqual(["a", "c", "x", "z"]);
    // "z" sorts after "c" by id, so the tie key alone cannot put it between a and c.
    move(t, "z", "a");
    expect(t.order()).toEqual(["a", "z", "c", "x"]);
    const keys = t.order().map((id) => t.item(id)!.position);
    expect(new Set(keys).size).toBe(4);
  });

  it("moves an item between tied items using the tie key when ids already order it", () => {
    const t = queue("a", "c", "b");
    place(t, "c", t.item("a")!.position);
    expect(t.order()).toEqual(["a", "c", "b"]);
    expect(move(t, "b", "a")).toEqual([{ type: "queue.item-moved", payload: { queueItemId: "b", messageId: "m-b", position: t.item("a")!.position } }]);
    expect(t.order()).toEqual(["a", "b", "c"]);
  });

  it("moving into a tie never changes the item being sent", () => {
    const t = Thread.ready();
    for (const id of ["s", "p", "z"]) t.add(id);
    t.claim(); // s is sending, at the head
    t.ok({ type: "queue.move", queueItemId: "p", to: { position: t.item("s")!.position } }); // s and p tie
    expect(t.order()).toEqual(["p", "s", "z"]);
    const before = t.item("s")!;
    const events = t.run({ type: "queue.move", queueItemId: "z", to: { afterId: "p" } });
    expect(t.order()).toEqual(["p", "z", "s"]);
    expect(types(events)).not.toHaveLength(0);
    expect(t.item("s")).toBe(before);
  });

  it("keeps keys within the 256-character limit however often items are moved into the same gap", () => {
    const t = Thread.ready();
    for (const id of ["s", "a", "x", "y", "b"]) t.add(id);
    t.claim(); // s is being sent: its key must never change
    const sendingKey = t.item("s")!.position;
    for (let n = 0; n < 2_000; n++) {
      const id = n % 2 ? "x" : "y";
      expect(move(t, id, "a")).not.toBeInstanceOf(Error);
      expect(t.order()).toEqual(["s", "a", id, id === "x" ? "y" : "x", "b"]);
    }
    for (const id of t.order()) {
      expect(t.item(id)!.position.length).toBeLessThanOrEqual(256);
      expect(isValidPositionKey(t.item(id)!.position)).toBe(true);
    }
    expect(t.item("s")!.position).toBe(sendingKey);
  });

  it("snapshot order always agrees with compareOrder", () => {
    const t = queue("a", "b", "c", "d");
    move(t, "d", null);
    place(t, "b", t.item("d")!.position);
    const items = snapshotOf(t.state).queue.items;
    for (let i = 1; i < items.length; i++) expect(compareOrder(items[i - 1]!, items[i]!)).toBeLessThan(0);
  });
});

describe("edit, move and remove while pending, failed or sending", () => {
  it("edits the text of a pending item", () => {
    const t = queue("a");
    expect(t.ok({ type: "queue.edit", queueItemId: "a", text: "new" })).toEqual([
      { type: "queue.item-edited", payload: { queueItemId: "a", messageId: "m-a", text: "new" } },
    ]);
    expect(t.item("a")?.text).toBe("new");
  });

  it("an edit to the same text emits nothing", () => {
    const t = queue("a");
    expect(t.ok({ type: "queue.edit", queueItemId: "a", text: t.item("a")!.text })).toEqual([]);
  });

  it("edits, moves and removes a failed item", () => {
    const t = failed();
    t.ok({ type: "queue.edit", queueItemId: "q1", text: "better wording" });
    expect(t.item("q1")).toMatchObject({ text: "better wording", status: "failed" });
    move(t, "q1", "q2");
    expect(t.order()).toEqual(["q2", "q1"]);
    expect(types(t.run({ type: "queue.remove", queueItemId: "q1" }))).toContain("queue.item-removed");
    expect(t.item("q1")).toBeUndefined();
  });

  it("removes a pending item", () => {
    const t = queue("a", "b");
    expect(t.ok({ type: "queue.remove", queueItemId: "a" })).toEqual([{ type: "queue.item-removed", payload: { queueItemId: "a", messageId: "m-a" } }]);
    expect(t.order()).toEqual(["b"]);
  });

  it("refuses to edit an item being sent (ITEM_SENDING)", () => {
    expect(sending().refused({ type: "queue.edit", queueItemId: "q1", text: "too late" })).toBe("ITEM_SENDING");
  });

  it("refuses to move an item being sent (ITEM_SENDING)", () => {
    expect(sending().refused({ type: "queue.move", queueItemId: "q1", to: { afterId: "q3" } })).toBe("ITEM_SENDING");
    expect(sending().refused({ type: "queue.move", queueItemId: "q1", to: { position: "b0" } })).toBe("ITEM_SENDING");
  });

  it("refuses to remove an item being sent (ITEM_SENDING)", () => {
    expect(sending().refused({ type: "queue.remove", queueItemId: "q1" })).toBe("ITEM_SENDING");
  });

  it("still lets other items move around the one being sent", () => {
    const t = sending();
    move(t, "q3", null);
    expect(t.order()).toEqual(["q3", "q1", "q2"]);
  });

  it("refuses to edit or remove an unknown item (ITEM_NOT_FOUND)", () => {
    const t = queue("a");
    expect(t.refused({ type: "queue.edit", queueItemId: "nope", text: "x" })).toBe("ITEM_NOT_FOUND");
    expect(t.refused({ type: "queue.remove", queueItemId: "nope" })).toBe("ITEM_NOT_FOUND");
  });
});
