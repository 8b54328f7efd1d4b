import { describe, expect, it } from "vitest";
import { drainBlocker, drainWakeAt, mayClaim, textHash, Command } from "../../src/domain/index.js";
import { Thread, claimOf, types } from "./harness.js";

/** A ready thread holding `ids` in order, nothing claimed yet. */
const ready = (...ids: string[]): Thread => Thread.holding(undefined, ...ids);
const lock = (queueItemId: string, forMs: number, holder = "instance-a") => ({ type: "queue.editLock" as const, queueItemId, holder, forMs });

describe("edit lock", () => {
  it("an item being typed into is not claimed; the queue waits at it (order holds), then claims it with the final text", () => {
    const t = ready("a", "b");
    t.ok(lock("a", 3_000));
    expect(drainBlocker(t.state, t.now)).toBe("next item is being edited");
    expect(t.claim()).toEqual([]);
    // The reactor wakes up when the lock lapses, not before.
    expect(drainWakeAt(t.state, t.now, t.policy, 0)).toEqual(new Date(t.now.getTime() + 3_000));
    t.ok({ type: "queue.edit", queueItemId: "a", text: "a, finished" });
    t.advance(2_999);
    expect(t.claim()).toEqual([]);
    t.advance(1);
    expect(claimOf(t.claim())).toMatchObject({ queueItemId: "a", message: { text: "a, finished" } });
  });

  it("a holder ends only its own lock; the item goes once no holder's lock is left", () => {
    const t = ready("a");
    expect(t.ok(lock("a", 0))).toEqual([]);
    t.ok(lock("a", 3_000, "instance-a"));
    t.ok(lock("a", 500, "instance-b"));
    expect(types(t.ok(lock("a", 0, "instance-a")))).toEqual(["queue.item-edit-locked"]);
    expect(t.claim()).toEqual([]);
    expect(drainWakeAt(t.state, t.now, t.policy, 0)).toEqual(new Date(t.now.getTime() + 500));
    t.ok(lock("a", 0, "instance-b"));
    expect(t.item("a")?.editLocks).toEqual({});
    expect(claimOf(t.claim()).queueItemId).toBe("a");
  });

  it("a renewal moves the deadline; a lock on another item than the head does not hold the head", () => {
    const t = ready("a", "b");
    t.ok(lock("b", 3_000));
    expect(drainBlocker(t.state, t.now)).toBeNull();
    t.ok(lock("a", 3_000));
    t.advance(2_000);
    t.ok(lock("a", 3_000));
    t.advance(2_000);
    expect(t.claim()).toEqual([]);
    t.advance(1_000);
    expect(claimOf(t.claim()).queueItemId).toBe("a");
  });

  it("a steer of an item being typed into waits until the typing stops, then goes with the final text", () => {
    const t = ready("a");
    t.ok({ type: "queue.pause" });
    t.ok(lock("a", 3_000));
    expect(types(t.run({ type: "queue.sendNow", queueItemId: "a" }))).toEqual(["queue.item-delivery-changed"]);
    t.ok({ type: "queue.edit", queueItemId: "a", text: "final" });
    expect(t.claim()).toEqual([]);
    t.advance(3_000);
    expect(claimOf(t.claim())).toMatchObject({ queueItemId: "a", message: { text: "final" } });
  });

  it("an item already being sent cannot be locked (ITEM_SENDING); an unknown one is ITEM_NOT_FOUND; the claim drops lapsed locks", () => {
    const t = ready("a");
    t.ok(lock("a", 1_000));
    t.advance(1_000);
    claimOf(t.claim());
    expect(t.item("a")?.editLocks).toEqual({});
    expect(t.refused(lock("a", 3_000))).toBe("ITEM_SENDING");
    expect(t.refused(lock("zz", 3_000))).toBe("ITEM_NOT_FOUND");
  });

  it("a lock is never a claim, and its duration is bounded", () => {
    expect(mayClaim(Command.parse(lock("a", 3_000)))).toBe(false);
    expect(Command.safeParse(lock("a", -1)).success).toBe(false);
    expect(Command.safeParse(lock("a", 60_001)).success).toBe(false);
  });
});

describe("an edit typed into the document replaces the log's text it was typed on", () => {
  const typed = (text: string, on?: string) => ({ type: "queue.edit" as const, queueItemId: "a", text, via: "document" as const, ...(on !== undefined && { replaces: textHash(on) }) });

  it("is taken over that text, refused TEXT_CHANGED once the log moved past it, and refused when it names none", () => {
    const t = ready("a");
    t.ok({ type: "queue.edit", queueItemId: "a", text: "v1" });
    expect(types(t.ok(typed("v1, typed", "v1")))).toEqual(["queue.item-edited"]);
    // An API edit lands in between: typing still made over "v1, typed" must not undo it.
    t.ok({ type: "queue.edit", queueItemId: "a", text: "v2 from the API" });
    expect(t.refused(typed("v1, typed more", "v1, typed"))).toBe("TEXT_CHANGED");
    expect(t.refused(typed("v1, typed more"))).toBe("TEXT_CHANGED");
    expect(t.item("a").text).toBe("v2 from the API");
  });

  it("an API edit names no text and wins over whatever the log has (last writer)", () => {
    const t = ready("a");
    t.ok(typed("typed", "text of a"));
    expect(types(t.ok({ type: "queue.edit", queueItemId: "a", text: "from the API" }))).toEqual(["queue.item-edited"]);
    expect(t.item("a").text).toBe("from the API");
  });
});

describe("typing whose edit lock lapsed is revoked in the log before a writer puts the log's text over it", () => {
  const revoke = (text: string, holder = "instance-b") => ({ type: "queue.revokeTyping" as const, queueItemId: "a", holder, replaces: textHash(text) });
  const typed = (text: string, on: string, basedOn: number) => ({ type: "queue.edit" as const, queueItemId: "a", text, via: "document" as const, replaces: textHash(on), basedOn });

  it("a commit of typing based on the log's text before the revocation is refused TEXT_CHANGED; typing based on it after lands; an API edit is unaffected", () => {
    const t = ready("a");
    t.ok({ type: "queue.edit", queueItemId: "a", text: "v1" });
    const known = t.state.version;
    t.ok(lock("a", 3_000, "instance-a"));
    t.advance(3_000);
    // Instance A's commit of "v2" is stuck past its lock's end; B revokes the typing to write "v1" over it.
    expect(t.ok(revoke("v1"))).toMatchObject([{ type: "queue.item-typing-revoked", payload: { queueItemId: "a", holders: ["instance-a"] } }]);
    expect(t.item("a").editLocks).toEqual({});
    expect(t.refused(typed("v2", "v1", known))).toBe("TEXT_CHANGED");
    expect(t.item("a").text).toBe("v1");
    // A's document took "v1" back, seen at the revocation's version or later: typing on it is typing like any other.
    expect(types(t.ok(typed("v3", "v1", t.state.version)))).toEqual(["queue.item-edited"]);
    expect(types(t.ok({ type: "queue.edit", queueItemId: "a", text: "from the API" }))).toEqual(["queue.item-edited"]);
  });

  it("does nothing while another holder's lock is live or when no other holder has one; never ends the revoker's own lock; refused once the text moved past the writer's read", () => {
    const t = ready("a");
    t.ok(lock("a", 3_000, "instance-a"));
    t.ok(lock("a", 10_000, "instance-b"));
    // A renewed (or still within) its lock: typing is being committed, and the writer waits for it.
    expect(t.ok(revoke("text of a"))).toEqual([]);
    t.advance(3_000);
    expect(t.ok(revoke("text of a"))).toMatchObject([{ payload: { holders: ["instance-a"] } }]);
    expect(Object.keys(t.item("a").editLocks)).toEqual(["instance-b"]);
    expect(t.ok(revoke("text of a"))).toEqual([]);
    t.ok(lock("a", 1_000, "instance-a"));
    t.advance(1_000);
    t.ok({ type: "queue.edit", queueItemId: "a", text: "moved on" });
    expect(t.refused(revoke("text of a"))).toBe("TEXT_CHANGED");
    expect(Object.keys(t.item("a").editLocks).sort()).toEqual(["instance-a", "instance-b"]);
  });

  it("is never a claim, and a sending item's typing is not revoked (ITEM_SENDING)", () => {
    expect(mayClaim(Command.parse(revoke("x")))).toBe(false);
    const t = ready("a");
    claimOf(t.claim());
    expect(t.refused(revoke("text of a"))).toBe("ITEM_SENDING");
  });
});
