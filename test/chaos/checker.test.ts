import { describe, expect, it } from "vitest";
import type { StoredEvent } from "../../src/domain/index.js";
import { check, type Check } from "./checker.js";
import type { AgentRecord, Op, RunHistory } from "./history.js";

/**
 * The checker against hand-written histories: a clean one passes, and each kind of fault
 * the chaos suite hunts is reported under its own check, with the history that shows it.
 */

const T = "t1";
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const at = (ms: number) => new Date(T0 + ms).toISOString();

/** A thread's log written event by event (versions and times in order). */
function logOf(...events: [type: string, payload: Record<string, unknown>, actor?: string][]): StoredEvent[] {
  const all: [string, Record<string, unknown>, string?][] = [["thread.created", { workspaceId: "local", title: "" }], ...events];
  return all.map(([type, payload, actor], i) => ({
    seq: String(i + 1), threadId: T, workspaceId: "local", version: i + 1, commandId: `c${i}`,
    actor: actor ?? "user:u", createdAt: at((i + 1) * 100), type, payload,
  })) as StoredEvent[];
}

const added = (id: string, text: string, position: string) =>
  ["queue.item-added", { queueItemId: id, messageId: `m-${id}`, text, attachments: [], options: {}, position }] as [string, Record<string, unknown>];
const ready: [string, Record<string, unknown>, string] = ["session.changed", { status: "ready", error: null }, "agent:a"];
const claim = (id: string, text: string, actor = "reactor:drain") =>
  ["queue.item-send-started", {
    queueItemId: id, dispatchId: `${id}.d`, kind: "turn", expectedTurnId: null, runtimeSessionId: null, attempt: 1,
    message: { messageId: `m-${id}`, text, attachments: [] }, options: {},
  }, actor] as [string, Record<string, unknown>, string];
const started = (id: string): [string, Record<string, unknown>, string][] => [
  ["turn.started", { turnId: `turn-${id}`, queueItemId: id }, "agent:a"],
  ["queue.item-resolved", { queueItemId: id, turnId: `turn-${id}` }, "agent:a"],
  ["message.sent", { messageId: `m-${id}`, queueItemId: id, turnId: `turn-${id}`, text: "", attachments: [] }, "agent:a"],
];
const ended = (id: string): [string, Record<string, unknown>, string][] => [
  ["turn.ended", { turnId: `turn-${id}`, outcome: "completed", error: null }, "agent:a"],
  ["session.changed", { status: "ready", error: null }, "agent:a"],
];

let nextOp = 0;
const op = (o: Partial<Op> & Pick<Op, "type" | "invokeAt">): Op => ({
  id: nextOp++, client: "c0", instance: "i0", threadId: T, outcome: "ok", completeAt: o.invokeAt + 10, ...o,
});
const addOp = (id: string, text: string, invokeAt: number) => op({ type: "add", queueItemId: id, messageId: `m-${id}`, text, invokeAt });

const rec = (r: Partial<AgentRecord> & Pick<AgentRecord, "kind" | "queueItemId" | "at">): AgentRecord => ({
  incarnation: 1, threadId: T, dispatchId: `${r.queueItemId}.d`, ...r,
});
/** The agent's records of one turn run from dispatch to return. */
const ran = (id: string, text: string, from: number, to = from + 50): AgentRecord[] => [
  rec({ kind: "handler", queueItemId: id, text, at: from }),
  rec({ kind: "started", queueItemId: id, at: from + 10 }),
  rec({ kind: "returned", queueItemId: id, at: to }),
];

function history(parts: Partial<RunHistory>): RunHistory {
  return { ops: [], agent: [], nemesis: [], log: new Map(), projections: { live: 1, rebuilt: 1 }, documents: [], ...parts };
}

/** Two items queued, both sent in order with the text they were queued with. */
const clean = () =>
  history({
    ops: [addOp("a", "a v0", 0), addOp("b", "b v0", 20)],
    log: new Map([[T, logOf(added("a", "a v0", "a0"), added("b", "b v0", "a1"), ready, claim("a", "a v0"), ...started("a"), ...ended("a"), claim("b", "b v0"), ...started("b"), ...ended("b"))]]),
    agent: [...ran("a", "a v0", 1_000), ...ran("b", "b v0", 2_000)],
  });

const checksOf = (h: RunHistory): Check[] => check(h).map((v) => v.check);

describe("the chaos checker", () => {
  it("finds nothing wrong in a clean history", () => {
    expect(check(clean())).toEqual([]);
  });

  it("total-queue: an acknowledged add that never came out", () => {
    const h = clean();
    h.ops.push(addOp("c", "c v0", 40));
    const [v] = check(h);
    expect(v).toMatchObject({ check: "total-queue", queueItemId: "c" });
    expect(v!.history.join("\n")).toContain('invoke add "c v0"');
  });

  it("total-queue: the log says sent but the agent never got it", () => {
    const h = clean();
    h.agent = h.agent.filter((r) => r.queueItemId !== "b");
    expect(checksOf(h)).toEqual(["total-queue"]);
  });

  it("an add that was removed, or whose answer never came, may stay unsent", () => {
    const h = clean();
    h.ops.push(addOp("c", "c v0", 40), op({ type: "remove", queueItemId: "c", invokeAt: 60 }), op({ type: "add", queueItemId: "d", text: "d v0", invokeAt: 70, outcome: "unknown" }));
    expect(check(h)).toEqual([]);
  });

  it("handler-twice: a started turn run again (a redelivery after a runtime restart)", () => {
    const h = clean();
    h.agent.push(...ran("a", "a v0", 3_000).map((r) => ({ ...r, incarnation: 2 })));
    expect(checksOf(h)).toContain("handler-twice");
  });

  it("a dispatch whose start the server refused is not a second run", () => {
    const h = clean();
    h.agent.push(rec({ kind: "handler", queueItemId: "a", text: "a v0", at: 3_000, incarnation: 2 }), rec({ kind: "refused", queueItemId: "a", at: 3_010, incarnation: 2 }));
    expect(check(h)).toEqual([]);
  });

  it("dispatch-after-remove: the agent got an item after its removal was acknowledged", () => {
    const h = clean();
    h.ops.push(op({ type: "remove", queueItemId: "b", invokeAt: 1_500, completeAt: 1_600 }));
    expect(checksOf(h)).toContain("dispatch-after-remove");
  });

  it("claim-order: the drain claimed an item that was not the head", () => {
    const h = clean();
    h.log.set(T, logOf(added("a", "a v0", "a0"), added("b", "b v0", "a1"), ready, claim("b", "b v0"), ...started("b"), ...ended("b"), claim("a", "a v0"), ...started("a"), ...ended("a")));
    h.agent = [...ran("b", "b v0", 1_000), ...ran("a", "a v0", 2_000)];
    expect(checksOf(h)).toEqual(["claim-order"]);
  });

  it("claim-order: a move before the claim changes the head, and a send-now claims past it", () => {
    const h = clean();
    h.log.set(T, logOf(added("a", "a v0", "a0"), added("b", "b v0", "a1"), ["queue.item-moved", { queueItemId: "b", position: "Zz" }], ready, claim("b", "b v0"), ...started("b"), ...ended("b"), claim("a", "a v0", "user:u"), ...started("a"), ...ended("a")));
    h.agent = [...ran("b", "b v0", 1_000), ...ran("a", "a v0", 2_000)];
    expect(check(h)).toEqual([]);
  });

  it("a steer that reaches the agent before the answer to the running turn's start is not out of order", () => {
    const h = clean();
    const steer: [string, Record<string, unknown>, string] = ["queue.item-send-started", { ...claim("b", "b v0", "user:u")[1], kind: "steer", expectedTurnId: "turn-a" }, "user:u"];
    h.log.set(T, logOf(added("a", "a v0", "a0"), added("b", "b v0", "a1"), ready, claim("a", "a v0"), ...started("a"), steer, ...started("b").slice(1), ...ended("a")));
    h.agent = [
      rec({ kind: "handler", queueItemId: "a", text: "a v0", at: 1_000 }),
      rec({ kind: "steer", queueItemId: "b", text: "b v0", at: 1_005 }),
      rec({ kind: "started", queueItemId: "a", at: 1_010 }),
      rec({ kind: "returned", queueItemId: "a", at: 1_100 }),
    ];
    expect(check(h)).toEqual([]);
  });

  it("one-in-flight: a second claim while the first item is still sending, and overlapping turns at the agent", () => {
    const h = clean();
    h.log.set(T, logOf(added("a", "a v0", "a0"), added("b", "b v0", "a1"), ready, claim("a", "a v0"), claim("b", "b v0", "user:u"), ...started("a"), ...started("b"), ...ended("a")));
    h.agent = [...ran("a", "a v0", 1_000, 1_500), ...ran("b", "b v0", 1_200, 1_600)];
    const found = checksOf(h);
    expect(found.filter((c) => c === "one-in-flight")).toHaveLength(2);
  });

  it("dispatched-text: typing acknowledged before the claim is not what the agent received (stale text)", () => {
    const h = clean();
    // "b v1" was typed on another instance and acknowledged long before b's claim (at 1,200 ms in the log).
    h.ops.push(op({ type: "type", queueItemId: "b", text: "b v1", instance: "i1", invokeAt: 300, completeAt: 400 }));
    const [v] = check(h);
    expect(v).toMatchObject({ check: "dispatched-text", queueItemId: "b" });
    expect(v!.message).toContain('"b v1" (type on i1) was acknowledged');
  });

  it("dispatched-text: an API edit acknowledged at an earlier version than the claim", () => {
    const h = clean();
    h.ops.push(op({ type: "edit", queueItemId: "b", text: "b v1", version: 4, invokeAt: 300 }));
    expect(checksOf(h)).toEqual(["dispatched-text"]);
  });

  it("dispatched-text: a text no client wrote (two replicas' writes doubled)", () => {
    const h = clean();
    h.ops.push(op({ type: "edit", queueItemId: "b", text: "b v1", version: 4, invokeAt: 300 }));
    const doubled = "b v1b v1";
    h.log.set(T, logOf(added("a", "a v0", "a0"), added("b", "b v0", "a1"), ["queue.item-edited", { queueItemId: "b", text: doubled, via: "document" }], ready, claim("a", "a v0"), ...started("a"), ...ended("a"), claim("b", doubled), ...started("b"), ...ended("b")));
    h.agent = [...ran("a", "a v0", 1_000), ...ran("b", doubled, 2_000)];
    expect(check(h).map((v) => v.message)).toEqual([`the claim carries ${JSON.stringify(doubled)}, which no client wrote`]);
  });

  it("an edit that committed after the claim's version may be missing from it", () => {
    const h = clean();
    h.ops.push(op({ type: "edit", queueItemId: "b", text: "b v1", version: 99, invokeAt: 300 }));
    expect(check(h)).toEqual([]);
  });

  it("fencing: a timeout for a claim the item no longer has, and the agent starting a stale dispatch", () => {
    const h = clean();
    const failed = (dispatchId: string): [string, Record<string, unknown>, string] =>
      ["queue.item-send-failed", { queueItemId: "a", dispatchId, reason: "timeout", final: true, retryAt: null }, "reactor:drain"];
    const reclaim: [string, Record<string, unknown>, string] = ["queue.item-send-started", { ...claim("a", "a v0")[1], dispatchId: "a.d2", attempt: 2 }, "reactor:drain"];
    h.log.set(T, logOf(added("a", "a v0", "a0"), ready, claim("a", "a v0"), failed("a.d"), ["queue.item-requeued", { queueItemId: "a" }], reclaim, failed("a.d"), reclaim, ...started("a"), ...ended("a")));
    h.ops = [addOp("a", "a v0", 0)];
    h.agent = ran("a", "a v0", 1_000);
    const found = check(h).filter((v) => v.check === "fencing").map((v) => v.message);
    expect(found).toEqual([
      expect.stringContaining("acted on a.d while the item's current claim was a.d2"),
      "the agent started stale dispatch a.d; the log resolved a.d2",
    ]);
  });

  it("projections and documents: any difference from the log", () => {
    const view = { meta: {}, items: [{ id: "a", text: "a" }] };
    const h = history({
      projections: { live: { items: [{ id: "a", status: "pending" }] }, rebuilt: { items: [{ id: "a", status: "failed" }] } },
      documents: [{ instance: "i1", threadId: T, view: view as never, expected: { ...view, items: [{ id: "a", text: "aa" }] } as never }],
    });
    const found = check(h);
    expect(found.map((v) => v.check)).toEqual(["projections", "documents"]);
    expect(found[0]!.message).toContain('$.items.0.status: "pending" ≠ "failed"');
    expect(found[1]!.message).toContain('"a" ≠ "aa"');
  });
});
