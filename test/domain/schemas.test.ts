import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  Command, DomainEvent, EVENT_TYPES, dispatchOf, initialState, messageStatus, replay, snapshotOf, type StoredEvent, type VersionedEvent,
} from "../../src/domain/index.js";
import { Thread, claimOf } from "./harness.js";

const add = (message: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  Command.safeParse({ type: "queue.add", queueItemId: "q1", message: { messageId: "m1", text: "hi", ...message }, ...extra });

describe("command input limits of docs/contract.md", () => {
  it("accepts ids of 1 to 128 characters", () => {
    expect(add({ messageId: "m" }).success).toBe(true);
    expect(add({ messageId: "m".repeat(128) }).success).toBe(true);
  });

  it("refuses an empty id and an id of 129 characters, naming the field", () => {
    for (const messageId of ["", "m".repeat(129)]) {
      const result = add({ messageId });
      expect(result.success).toBe(false);
      expect(z.flattenError(result.error!).fieldErrors).toHaveProperty("message");
      expect(result.error!.issues[0]!.path).toEqual(["message", "messageId"]);
    }
  });

  it("accepts a text of 100,000 characters and refuses one more", () => {
    expect(add({ text: "x".repeat(100_000) }).success).toBe(true);
    expect(add({ text: "x".repeat(100_001) }).success).toBe(false);
    expect(Command.safeParse({ type: "queue.edit", queueItemId: "q1", text: "x".repeat(100_001) }).success).toBe(false);
  });

  it("fills the defaults: no attachments, no options, queued plainly, no author", () => {
    const parsed = add({});
    expect(parsed.data).toMatchObject({ message: { attachments: [] }, options: {}, delivery: "queue", author: null });
  });

  it("keeps extra options the user saw, but only plain values", () => {
    expect(add({}, { options: { model: "m", temperature: 0.2, web: true, note: null } }).success).toBe(true);
    expect(add({}, { options: { nested: { a: 1 } } }).success).toBe(false);
  });

  it("refuses more than 64 attachments and an attachment without a name", () => {
    expect(add({ attachments: Array.from({ length: 65 }, (_, k) => ({ name: `f${k}` })) }).success).toBe(false);
    expect(add({ attachments: [{ name: "" }] }).success).toBe(false);
  });

  it("refuses an unknown command type", () => {
    expect(Command.safeParse({ type: "queue.explode" }).success).toBe(false);
  });

  it("refuses a move without a destination, and a position key longer than 256 characters", () => {
    expect(Command.safeParse({ type: "queue.move", queueItemId: "q1", to: {} }).success).toBe(false);
    expect(Command.safeParse({ type: "queue.move", queueItemId: "q1", to: { position: `a0${"V".repeat(255)}` } }).success).toBe(false);
  });

  it("agents may not report the session as unknown", () => {
    expect(Command.safeParse({ type: "agent.session", status: "unknown" }).success).toBe(false);
    expect(Command.safeParse({ type: "agent.session", status: "ready" }).success).toBe(true);
  });
});

describe("events", () => {
  it("are exactly the event types of docs/contract.md", () => {
    expect([...EVENT_TYPES].sort()).toEqual(
      [
        "thread.created", "thread.archived", "thread.deleted", "session.changed",
        "queue.item-added", "queue.item-edited", "queue.item-moved", "queue.item-removed",
        "queue.item-send-started", "queue.item-send-failed", "queue.item-requeued",
        "queue.item-resolved", "queue.paused", "queue.resumed", "turn.started", "turn.ended",
        "message.sent", "thread.interrupt-requested", "queue.item-edit-locked", "thread.renamed",
        "queue.item-delivery-changed", "queue.mode-changed", "queue.item-typing-revoked",
      ].sort(),
    );
  });

  it("every event the decider emits in a full round trip is valid against its schema", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.add", queueItemId: "q1", message: { messageId: "m1", text: "one", attachments: [{ name: "a.txt" }] }, options: { model: "x" } });
    t.add("q2");
    t.claim();
    t.started("q1", "turn1");
    t.ok({ type: "queue.sendNow", queueItemId: "q2" });
    t.startFailed("q2", false);
    t.ended("turn1", "interrupted");
    t.ok({ type: "queue.retry", queueItemId: "q2" });
    t.ok({ type: "queue.move", queueItemId: "q2", to: { afterId: null } });
    t.ok({ type: "queue.edit", queueItemId: "q2", text: "two" });
    t.ok({ type: "queue.remove", queueItemId: "q2" });
    t.ok({ type: "thread.rename", title: "renamed" });
    t.ok({ type: "thread.archive" });
    t.ok({ type: "thread.delete" });
    const types = new Set(t.log.map((e) => e.type));
    expect(types.size).toBeGreaterThanOrEqual(14);
    for (const e of t.log) expect(DomainEvent.safeParse({ type: e.type, payload: e.payload }).success, e.type).toBe(true);
  });

  it("the dispatch an agent receives is built from the claim event alone", () => {
    const t = Thread.ready();
    const claim = claimOf(t.ok({ type: "queue.add", queueItemId: "q1", message: { messageId: "m1", text: "go" }, options: { mode: "auto" } }));
    const stored = {
      type: "queue.item-send-started", payload: claim, seq: "7", threadId: "t1", workspaceId: "w1",
      version: 4, commandId: "c", actor: "reactor:drain", createdAt: "2026-01-01T00:00:00.000Z",
    } as StoredEvent & { type: "queue.item-send-started" };
    expect(dispatchOf(stored)).toEqual({
      threadId: "t1", queueItemId: "q1", dispatchId: claim.dispatchId, kind: "turn", expectedTurnId: null, attempt: 1,
      runtimeSessionId: null, message: { messageId: "m1", text: "go", attachments: [] }, options: { mode: "auto" },
    });
  });
});

describe("thread snapshot", () => {
  it("has exactly docs/contract.md's ThreadSnapshot and QueueItem fields", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.pause" });
    t.add("q1");
    const snapshot = snapshotOf(t.state);
    expect(Object.keys(snapshot).sort()).toEqual(["archived", "queue", "session", "threadId", "title", "version"]);
    expect(Object.keys(snapshot.session).sort()).toEqual(["activeTurnId", "error", "runtimeSessionId", "status"]);
    expect(Object.keys(snapshot.queue).sort()).toEqual(["items", "mode", "pauseReason", "paused", "resumeAt"]);
    expect(Object.keys(snapshot.queue.items[0]!).sort()).toEqual(
      [
        "attachments", "attempts", "author", "createdAt", "delivery", "failureReason", "messageId", "options", "position", "queueItemId", "status",
        "text", "updatedAt",
      ],
    );
    expect(snapshot).toMatchObject({ threadId: "t1", title: "a thread", version: t.state.version, archived: false, queue: { paused: true, pauseReason: "user" } });
  });

  it("lists items in queue order, not in insertion order", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.pause" });
    for (const id of ["q1", "q2", "q3"]) t.add(id);
    t.ok({ type: "queue.move", queueItemId: "q3", to: { afterId: null } });
    t.ok({ type: "queue.move", queueItemId: "q1", to: { afterId: "q2" } });
    expect(snapshotOf(t.state).queue.items.map((i) => i.queueItemId)).toEqual(["q3", "q2", "q1"]);
  });

  it("shows a failed item with its reason where it was", () => {
    const t = Thread.ready();
    t.add("q1");
    t.add("q2");
    t.claim();
    t.startFailed("q1", false, "model unavailable");
    expect(snapshotOf(t.state).queue.items.map((i) => [i.queueItemId, i.status, i.failureReason])).toEqual([
      ["q1", "failed", "model unavailable"],
      ["q2", "pending", null],
    ]);
  });
});

describe("events stored before delivery modes and message fates", () => {
  it("replay as they are (the log is read back unparsed and never rewritten): a plain item with no author, a hold with no resumeAt", () => {
    const old = [
      { type: "thread.created", payload: { workspaceId: "w", title: "t" } },
      { type: "queue.item-added", payload: { queueItemId: "q1", messageId: "m1", text: "x", attachments: [], options: {}, position: "a0" } },
      { type: "queue.paused", payload: { reason: "user" } },
      { type: "queue.item-removed", payload: { queueItemId: "q1" } },
    ].map((e, k) => ({ ...e, version: k + 1, createdAt: "2026-01-01T00:00:00.000Z" })) as unknown as VersionedEvent[];
    const before = replay(initialState("t1"), old.slice(0, 3));
    expect(before.items.get("q1")).toMatchObject({ delivery: "queue", author: null });
    expect(snapshotOf(before).queue).toMatchObject({ paused: true, pauseReason: "user", resumeAt: null, mode: "auto" });
    expect(messageStatus(replay(before, old.slice(3)), "m1")).toEqual({ state: "removed", queueItemId: "q1" });
  });
});
