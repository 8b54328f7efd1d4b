import { isDeepStrictEqual } from "node:util";
import { evolve, firstGoing, initialState, sendingItem, type StoredEvent, type ThreadState } from "../../src/domain/index.js";
import type { AgentRecord, NemesisRecord, Op, RunHistory } from "./history.js";

/**
 * The checker: system-wide invariants read from the histories and the final store, never
 * from how the run went. Each check has a stable name (the table's and the docs' columns).
 */
export const CHECKS = [
  "total-queue",
  "handler-twice",
  "dispatch-after-remove",
  "claim-order",
  "one-in-flight",
  "dispatched-text",
  "fencing",
  "projections",
  "documents",
] as const;
export type Check = (typeof CHECKS)[number];

export interface Violation {
  check: Check;
  threadId?: string;
  queueItemId?: string;
  message: string;
  /** The smallest part of the history that shows it: this item's operations, agent records, events and the faults meanwhile. */
  history: string[];
}

type Claim = StoredEvent & { type: "queue.item-send-started" };

/** Events whose command claims by the drain's rule in the same decision (`thenDrain` in src/domain/decide.ts). */
const DRAIN_CUES = new Set<string>(["queue.item-added", "turn.ended", "session.changed"]);

export function check(run: RunHistory): Violation[] {
  const violations: Violation[] = [];
  const ctx = new Context(run);
  const add = (v: Omit<Violation, "history">) => violations.push({ ...v, history: ctx.historyOf(v.threadId, v.queueItemId) });

  // Replay each thread's log once, collecting what the log-side checks need.
  const claims: Claim[] = [];
  /** queueItemId → the dispatch whose start resolved it. */
  const resolvedClaim = new Map<string, string>();
  for (const [threadId, events] of run.log) {
    let state: ThreadState = initialState(threadId);
    /** The command whose events are being replayed, and whether one of them is a drain cue. */
    let commit = { commandId: "", cue: false };
    for (const event of events) {
      if (event.commandId !== commit.commandId) commit = { commandId: event.commandId, cue: false };
      commit.cue ||= DRAIN_CUES.has(event.type);
      if (event.type === "queue.item-send-started") {
        claims.push(event as Claim);
        const { queueItemId } = event.payload;
        const busy = sendingItem(state);
        if (busy) {
          add({ check: "one-in-flight", threadId, queueItemId, message: `claimed while ${busy.queueItemId} was still sending (version ${event.version})` });
        }
        // The drain's rule claims: the reactor's, and those an add, a turn's end or a session
        // report made in the same decision (a send-now claims past the order, by design).
        if ((event.actor === "reactor:drain" || commit.cue) && event.payload.kind === "turn") {
          const head = firstGoing(state.items.values());
          if (head?.queueItemId !== queueItemId) {
            add({ check: "claim-order", threadId, queueItemId, message: `the drain claimed ${queueItemId} while the head of the queue was ${head?.queueItemId ?? "nothing"} (version ${event.version})` });
          }
        }
      }
      if (event.type === "queue.item-send-failed" || event.type === "queue.item-resolved") {
        // Fencing: a timeout or a start acts on the item's current claim only, never on one it
        // lost (an instance that slept through its lease and woke with old news).
        const { queueItemId } = event.payload;
        const item = state.items.get(queueItemId);
        const current = item?.status === "sending" ? item.dispatchId : null;
        const acted = event.type === "queue.item-send-failed" ? event.payload.dispatchId : current;
        if (current === null || acted !== current) {
          add({ check: "fencing", threadId, queueItemId, message: `${event.type} (version ${event.version}) acted on ${acted ?? "a claim"} while the item's current claim was ${current ?? "none"}` });
        }
        if (event.type === "queue.item-resolved" && current) resolvedClaim.set(queueItemId, current);
      }
      state = evolve(state, event);
    }
  }
  // Fencing, agent side: only the claim the log resolved had its turn started by the agent.
  for (const r of run.agent) {
    if (r.kind !== "started") continue;
    const resolvedBy = resolvedClaim.get(r.queueItemId);
    if (resolvedBy !== undefined && resolvedBy !== r.dispatchId) {
      add({ check: "fencing", threadId: r.threadId, queueItemId: r.queueItemId, message: `the agent started stale dispatch ${r.dispatchId}; the log resolved ${resolvedBy}` });
    }
  }

  const agentByItem = groupBy(run.agent, (r) => r.queueItemId);
  const removedAt = new Map<string, number>();
  for (const op of run.ops) if (op.type === "remove" && op.outcome === "ok" && op.queueItemId) removedAt.set(op.queueItemId, op.completeAt);
  const removedInLog = new Set([...run.log.values()].flat().flatMap((e) => (e.type === "queue.item-removed" ? [e.payload.queueItemId] : [])));
  const sentInLog = new Map<string, number>();
  for (const e of [...run.log.values()].flat()) if (e.type === "message.sent") sentInLog.set(e.payload.queueItemId, (sentInLog.get(e.payload.queueItemId) ?? 0) + 1);

  // total-queue: what goes in (acknowledged, not removed) comes out, once.
  for (const op of run.ops) {
    if (op.type !== "add" || op.outcome !== "ok" || !op.queueItemId) continue;
    const id = op.queueItemId;
    if (removedAt.has(id) || removedInLog.has(id)) continue;
    const received = (agentByItem.get(id) ?? []).some((r) => r.kind === "handler" || r.kind === "steer");
    if (!sentInLog.has(id)) add({ check: "total-queue", threadId: op.threadId, queueItemId: id, message: `acknowledged add of ${op.messageId} was never sent` });
    else if (!received) add({ check: "total-queue", threadId: op.threadId, queueItemId: id, message: `the log says ${op.messageId} was sent, but the agent never received it` });
  }
  for (const [id, count] of sentInLog) {
    if (count > 1) add({ check: "handler-twice", threadId: ctx.threadOf(id), queueItemId: id, message: `message.sent ${count} times` });
  }

  /**
   * The agent's runs the server counted: a turn whose start it acknowledged, or the steer
   * the log resolved. (A steer reaches the running turn before its start is reported: one
   * whose report the server refused after a timeout was delivered, and will be again.)
   */
  const counted = (r: AgentRecord) => r.kind === "started" || (r.kind === "steer" && resolvedClaim.get(r.queueItemId) === r.dispatchId);

  // handler-twice: a turn the server acknowledged as started runs once, across runtime restarts too.
  for (const [id, records] of agentByItem) {
    const starts = records.filter(counted);
    if (starts.length > 1) add({ check: "handler-twice", threadId: records[0]!.threadId, queueItemId: id, message: `the agent's turn ran ${starts.length} times` });
    // dispatch-after-remove: once a remove is acknowledged the item is never dispatched again.
    const removed = removedAt.get(id);
    const late = removed === undefined ? undefined : records.find((r) => (r.kind === "handler" || r.kind === "steer") && r.at > removed);
    if (late) add({ check: "dispatch-after-remove", threadId: late.threadId, queueItemId: id, message: `dispatched ${late.at - removed!} ms after its removal was acknowledged` });
  }

  // one-in-flight, agent side: the turns of one thread the agent ran never overlap.
  for (const [threadId, records] of groupBy(run.agent, (r) => r.threadId)) {
    const turns: { id: string; from: number; to: number }[] = [];
    const open = new Map<string, number>();
    for (const r of [...records].sort((a, b) => a.at - b.at)) {
      if (r.kind === "started") open.set(`${r.incarnation} ${r.queueItemId}`, r.at);
      if (r.kind === "returned") {
        const from = open.get(`${r.incarnation} ${r.queueItemId}`);
        if (from !== undefined) turns.push({ id: r.queueItemId, from, to: r.at });
      }
    }
    turns.sort((a, b) => a.from - b.from);
    for (let i = 1; i < turns.length; i++) {
      if (turns[i]!.from < turns[i - 1]!.to) {
        add({ check: "one-in-flight", threadId, queueItemId: turns[i]!.id, message: `its turn started while ${turns[i - 1]!.id}'s was still running` });
      }
    }
    // claim-order, agent side: the agent received the turns it ran in the order the log
    // resolved them (by when each reached the handler: the answer to a start may come late).
    const resolved = (run.log.get(threadId) ?? []).flatMap((e) => (e.type === "queue.item-resolved" ? [e.payload.queueItemId] : []));
    const ranDispatches = new Set(records.filter((r) => r.kind === "started").map((r) => `${r.incarnation} ${r.dispatchId}`));
    const startedOrder = records
      .filter((r) => (r.kind === "steer" && counted(r)) || (r.kind === "handler" && ranDispatches.has(`${r.incarnation} ${r.dispatchId}`)))
      .sort((a, b) => a.at - b.at)
      .map((r) => r.queueItemId);
    const common = resolved.filter((id) => startedOrder.includes(id));
    const agentCommon = startedOrder.filter((id) => common.includes(id));
    if (!isDeepStrictEqual(common, agentCommon)) {
      add({ check: "claim-order", threadId, message: `the agent started ${agentCommon.join(",")} but the log resolved ${common.join(",")}` });
    }
  }

  // dispatched-text: the agent received the item's last acknowledged text.
  for (const claim of claims) {
    const id = claim.payload.queueItemId;
    const received = (agentByItem.get(id) ?? []).filter((r) => r.dispatchId === claim.payload.dispatchId && (r.kind === "handler" || r.kind === "steer"));
    for (const r of received) {
      if (r.text !== claim.payload.message.text) {
        add({ check: "dispatched-text", threadId: claim.threadId, queueItemId: id, message: `the agent received ${JSON.stringify(r.text)}, the claim says ${JSON.stringify(claim.payload.message.text)}` });
      }
    }
    const problem = ctx.staleText(claim);
    if (problem) add({ check: "dispatched-text", threadId: claim.threadId, queueItemId: id, message: problem });
  }

  if (!isDeepStrictEqual(run.projections.live, run.projections.rebuilt)) {
    add({ check: "projections", message: `the projections differ from a rebuild from the log: ${firstDifference(run.projections.live, run.projections.rebuilt)}` });
  }
  for (const d of run.documents) {
    if (!isDeepStrictEqual(d.view, d.expected)) {
      add({ check: "documents", threadId: d.threadId, message: `the document on ${d.instance} differs from the log: ${firstDifference(d.view, d.expected)}` });
    }
  }
  return violations;
}

class Context {
  private readonly opsByItem: Map<string, Op[]>;
  private readonly agentByItem: Map<string, AgentRecord[]>;

  constructor(private readonly run: RunHistory) {
    this.opsByItem = groupBy(run.ops.filter((o) => o.queueItemId), (o) => o.queueItemId!);
    this.agentByItem = groupBy(run.agent, (r) => r.queueItemId);
  }

  threadOf(queueItemId: string): string | undefined {
    return this.opsByItem.get(queueItemId)?.[0]?.threadId;
  }

  /**
   * Why a claim's text is not the item's last acknowledged one, or null. Every text a
   * client gave an item is unique to that item, in the order one client wrote them: the
   * claim must carry a text a client wrote, no older than the last one acknowledged before
   * the claim (by thread version for API edits, by time for typing, whose acknowledgement
   * is the server holding the keystrokes), and never one the server refused.
   */
  staleText(claim: Claim): string | null {
    const id = claim.payload.queueItemId;
    const texts = (this.opsByItem.get(id) ?? []).filter((o) => (o.type === "add" || o.type === "edit" || o.type === "type") && o.text !== undefined);
    if (texts.length === 0) return null;
    texts.sort((a, b) => a.invokeAt - b.invokeAt);
    const claimAt = Date.parse(claim.createdAt);
    const sent = claim.payload.message.text;
    const index = texts.findIndex((o) => o.text === sent);
    if (index < 0) return `the claim carries ${JSON.stringify(sent)}, which no client wrote`;
    if (texts[index]!.outcome === "fail" && texts[index]!.type !== "add") return `the claim carries ${JSON.stringify(sent)}, an edit the server refused`;
    let required = -1;
    texts.forEach((o, i) => {
      if (o.outcome !== "ok") return;
      const before = o.type === "edit" ? o.version !== undefined && o.version < claim.version : o.type === "type" ? o.completeAt < claimAt : true;
      if (before) required = i;
    });
    if (index < required) {
      const last = texts[required]!;
      return `the claim carries ${JSON.stringify(sent)}, but ${JSON.stringify(last.text)} (${last.type} on ${last.instance}) was acknowledged ${last.type === "edit" ? `at version ${last.version}` : `${claimAt - last.completeAt} ms`} before the claim (version ${claim.version})`;
    }
    return null;
  }

  historyOf(threadId?: string, queueItemId?: string): string[] {
    const lines: { at: number; line: string }[] = [];
    const ops = queueItemId ? (this.opsByItem.get(queueItemId) ?? []) : this.run.ops.filter((o) => o.threadId === threadId && !o.queueItemId);
    for (const o of ops) {
      lines.push({ at: o.invokeAt, line: `${o.client}@${o.instance} invoke ${o.type}${o.text !== undefined ? ` ${JSON.stringify(o.text)}` : ""}${o.key ? ` key=${o.key}` : ""}` });
      lines.push({ at: o.completeAt, line: `${o.client}@${o.instance} ${o.outcome} ${o.type}${o.version !== undefined ? ` v${o.version}` : ""}${o.error ? ` (${o.error})` : ""}` });
    }
    for (const r of queueItemId ? (this.agentByItem.get(queueItemId) ?? []) : []) {
      lines.push({ at: r.at, line: `agent#${r.incarnation} ${r.kind} ${r.dispatchId}${r.text !== undefined ? ` ${JSON.stringify(r.text)}` : ""}` });
    }
    const events = threadId ? (this.run.log.get(threadId) ?? []) : [];
    for (const e of events) {
      const payload = e.payload as { queueItemId?: string; text?: string; message?: { text: string }; dispatchId?: string; reason?: string; holder?: string; until?: string | null };
      if (queueItemId && payload.queueItemId !== queueItemId) continue;
      // A lock names its holder (an instance's collab side): which instance was typing in the item.
      const detail = payload.message?.text ?? payload.text ?? payload.reason ?? (payload.holder !== undefined ? `${payload.holder} until ${payload.until}` : undefined);
      lines.push({ at: Date.parse(e.createdAt), line: `log v${e.version} ${e.type} by ${e.actor}${detail !== undefined ? ` ${JSON.stringify(detail)}` : ""}` });
    }
    if (lines.length > 0) {
      const from = Math.min(...lines.map((l) => l.at));
      const to = Math.max(...lines.map((l) => l.at));
      for (const n of this.run.nemesis) if (n.at >= from && n.at <= to) lines.push({ at: n.at, line: `nemesis: ${n.what}` });
    }
    lines.sort((a, b) => a.at - b.at);
    const start = lines[0]?.at ?? 0;
    return lines.map((l) => `+${String(l.at - start).padStart(6)} ms  ${l.line}`);
  }
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k);
    if (list) list.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** Where two JSON-like values first differ, as a path and both values. */
export function firstDifference(a: unknown, b: unknown, path = "$"): string {
  if (isDeepStrictEqual(a, b)) return "";
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
      if (d) return d;
    }
  }
  return `${path}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`;
}

export type { NemesisRecord };
