import { describe, expect, it } from "vitest";
import { isEligible, snapshotOf, type CommandInput } from "../../src/domain/index.js";
import { Thread, types } from "./harness.js";

/** Every command other than thread.create, each well-formed. */
const everyCommand: CommandInput[] = [
  { type: "thread.archive" },
  { type: "thread.delete" },
  { type: "thread.rename", title: "renamed" },
  { type: "queue.add", queueItemId: "q1", message: { messageId: "m1", text: "hi" } },
  { type: "queue.edit", queueItemId: "q1", text: "hello" },
  { type: "queue.move", queueItemId: "q1", to: { afterId: null } },
  { type: "queue.move", queueItemId: "q1", to: { position: "a0" } },
  { type: "queue.remove", queueItemId: "q1" },
  { type: "queue.retry", queueItemId: "q1" },
  { type: "queue.sendNow", queueItemId: "q1" },
  { type: "queue.pause" },
  { type: "queue.resume" },
  { type: "agent.session", status: "ready" },
  { type: "agent.turnStarted", queueItemId: "q1", turnId: "turn1" },
  { type: "agent.turnStartFailed", queueItemId: "q1", reason: "no", retryable: true },
  { type: "agent.turnEnded", turnId: "turn1", outcome: "completed" },
  { type: "drain.claim" },
  { type: "drain.timeout", queueItemId: "q1", dispatchId: "q1.v1" },
];

describe("thread create", () => {
  it("creates the thread in its workspace with its title", () => {
    const t = new Thread();
    expect(t.ok({ type: "thread.create", workspaceId: "w1", title: "Refactor" })).toEqual([
      { type: "thread.created", payload: { workspaceId: "w1", title: "Refactor" } },
    ]);
    expect(t.state).toMatchObject({ exists: true, workspaceId: "w1", title: "Refactor", version: 1 });
  });

  it("is idempotent in the same workspace: creating again changes nothing", () => {
    const t = new Thread();
    t.create("w1");
    expect(t.ok({ type: "thread.create", workspaceId: "w1", title: "another title" })).toEqual([]);
    expect(t.state.title).toBe("a thread");
  });

  it("refuses a thread id already taken in another workspace (THREAD_EXISTS)", () => {
    const t = new Thread();
    t.create("w1");
    expect(t.refused({ type: "thread.create", workspaceId: "w2" })).toBe("THREAD_EXISTS");
  });

  it("refuses to re-create a deleted thread's id (THREAD_EXISTS): its history stays its own", () => {
    const t = new Thread();
    t.create("w1");
    t.ok({ type: "thread.delete" });
    expect(t.refused({ type: "thread.create", workspaceId: "w1" })).toBe("THREAD_EXISTS");
  });
});

describe("unknown or deleted thread", () => {
  it.each(everyCommand.map((c) => [c.type, c] as const))("%s on a thread that was never created → THREAD_NOT_FOUND", (_, command) => {
    expect(new Thread().refused(command)).toBe("THREAD_NOT_FOUND");
  });

  it.each(everyCommand.map((c) => [c.type, c] as const))("%s on a deleted thread → THREAD_NOT_FOUND", (_, command) => {
    const t = Thread.ready();
    t.add("q1");
    t.ok({ type: "thread.delete" });
    expect(t.refused(command)).toBe("THREAD_NOT_FOUND");
  });

  it("refusals are not-found errors (the API maps them to NOT_FOUND)", () => {
    const result = new Thread().run({ type: "queue.pause" });
    expect(result).toMatchObject({ reason: "THREAD_NOT_FOUND", kind: "not_found" });
  });
});

describe("thread rename", () => {
  it("changes the title and nothing else; the same title again emits nothing", () => {
    const t = Thread.ready();
    t.add("q1");
    const before = snapshotOf(t.state);
    expect(t.ok({ type: "thread.rename", title: "Parser work" })).toEqual([{ type: "thread.renamed", payload: { title: "Parser work" } }]);
    expect(snapshotOf(t.state)).toEqual({ ...before, title: "Parser work", version: before.version + 1 });
    expect(t.ok({ type: "thread.rename", title: "Parser work" })).toEqual([]);
  });
});

describe("thread archive", () => {
  it("archives the thread", () => {
    const t = Thread.ready();
    expect(types(t.run({ type: "thread.archive" }))).toEqual(["thread.archived"]);
    expect(snapshotOf(t.state).archived).toBe(true);
  });

  it("is idempotent: archiving again emits nothing", () => {
    const t = Thread.ready();
    t.ok({ type: "thread.archive" });
    expect(t.ok({ type: "thread.archive" })).toEqual([]);
  });

  it("refuses new messages (THREAD_ARCHIVED)", () => {
    const t = Thread.ready();
    t.ok({ type: "thread.archive" });
    expect(t.add("q1")).toMatchObject({ reason: "THREAD_ARCHIVED", kind: "conflict" });
  });

  it("still answers a retry of a message accepted before archiving with its item, not a refusal", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.pause" });
    t.ok({ type: "queue.add", queueItemId: "q1", message: { messageId: "m1", text: "hello" } });
    t.ok({ type: "thread.archive" });
    expect(t.ok({ type: "queue.add", queueItemId: "q2", message: { messageId: "m1", text: "hello" } })).toEqual([]);
    expect(t.state.messages["m1"]?.queueItemId).toBe("q1");
    expect(t.refused({ type: "queue.add", queueItemId: "q2", message: { messageId: "m2", text: "hello" } })).toBe("THREAD_ARCHIVED");
  });

  it("refuses send now (THREAD_ARCHIVED)", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.pause" });
    t.add("q1");
    t.ok({ type: "thread.archive" });
    expect(t.refused({ type: "queue.sendNow", queueItemId: "q1" })).toBe("THREAD_ARCHIVED");
  });

  it("drains nothing: items queued before archiving stay queued", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.pause" });
    t.add("q1");
    t.ok({ type: "thread.archive" });
    t.ok({ type: "queue.resume" });
    expect(isEligible(t.state, t.now)).toBe(false);
    expect(t.claim()).toEqual([]);
    expect(t.item("q1")?.status).toBe("pending");
  });
});

describe("thread delete", () => {
  it("removes the queue", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.pause" });
    t.add("q1");
    t.add("q2");
    expect(types(t.run({ type: "thread.delete" }))).toEqual(["thread.deleted"]);
    expect(t.state.items).toEqual({});
    expect(snapshotOf(t.state).queue.items).toEqual([]);
  });

  it("makes nothing of it ever claimable, whatever the agent reports", () => {
    const t = Thread.ready();
    t.ok({ type: "queue.pause" });
    t.add("q1");
    t.ok({ type: "thread.delete" });
    expect(isEligible(t.state, t.now)).toBe(false);
    expect(t.refused({ type: "drain.claim" })).toBe("THREAD_NOT_FOUND");
    expect(t.refused({ type: "agent.session", status: "ready" })).toBe("THREAD_NOT_FOUND");
  });

  it("a dispatch in flight when the thread is deleted can no longer start a turn", () => {
    const t = Thread.ready();
    t.add("q1");
    t.claim();
    t.ok({ type: "thread.delete" });
    expect(t.refused({ type: "agent.turnStarted", queueItemId: "q1", turnId: "turn1" })).toBe("THREAD_NOT_FOUND");
  });
});
