import type { Engine } from "../../src/engine/types.js";
import { add, cmd, user } from "../engine/harness.js";

/**
 * A realistic mixed history over several threads: adds, edits, moves, claims, turns,
 * retryable and permanent failures, retries, removals, steers, interrupts, pause and
 * resume, an archived thread and a deleted one. `advance` moves the (fake) clock past
 * retry backoffs.
 */
export async function playMixedHistory(engine: Engine, advance: (ms: number) => void): Promise<void> {
  const run = (threadId: string, c: ReturnType<typeof cmd>) => engine.execute(threadId, c, user);
  const ready = (threadId: string) => run(threadId, cmd({ type: "agent.session", status: "ready" }));

  // Thread A: the full life of several items.
  await run("A", cmd({ type: "thread.create", workspaceId: "w1", title: "main work" }));
  for (let i = 1; i <= 6; i++) await run("A", add(`A${i}`, `task ${i}`, { options: { model: "m1" } }));
  await run("A", cmd({ type: "queue.edit", queueItemId: "item-A2", text: "task 2, edited" }));
  await run("A", cmd({ type: "queue.move", queueItemId: "item-A5", to: { afterId: null } }));
  await run("A", cmd({ type: "queue.move", queueItemId: "item-A1", to: { afterId: "item-A3" } }));
  await run("A", cmd({ type: "queue.remove", queueItemId: "item-A4" }));
  await ready("A");
  // A5 is the head: claimed, started, completed.
  await run("A", cmd({ type: "drain.claim" }));
  await run("A", cmd({ type: "agent.turnStarted", queueItemId: "item-A5", turnId: "turn-1" }));
  // Steer while turn-1 runs: send-now of A6 as a steer, accepted.
  await run("A", cmd({ type: "queue.sendNow", queueItemId: "item-A6" }));
  await run("A", cmd({ type: "agent.turnStarted", queueItemId: "item-A6", turnId: "turn-1" }));
  await run("A", cmd({ type: "agent.turnEnded", turnId: "turn-1", outcome: "completed" }));
  // Next head: a retryable start failure, backoff, then a permanent one holding the queue.
  await run("A", cmd({ type: "drain.claim" }));
  const head = [...(await engine.load("A")).items.values()].find((i) => i.status === "sending")!;
  await run("A", cmd({ type: "agent.turnStartFailed", queueItemId: head.queueItemId, reason: "agent busy", retryable: true }));
  advance(60_000);
  await run("A", cmd({ type: "drain.claim" }));
  await run("A", cmd({ type: "agent.turnStartFailed", queueItemId: head.queueItemId, reason: "model gone", retryable: false }));
  await run("A", cmd({ type: "queue.retry", queueItemId: head.queueItemId }));
  await run("A", cmd({ type: "drain.claim" }));
  await run("A", cmd({ type: "agent.turnStarted", queueItemId: head.queueItemId, turnId: "turn-2" }));
  await run("A", cmd({ type: "agent.turnEnded", turnId: "turn-2", outcome: "interrupted" }));
  await run("A", cmd({ type: "queue.resume" }));
  await run("A", cmd({ type: "drain.claim" }));
  const next = [...(await engine.load("A")).items.values()].find((i) => i.status === "sending")!;
  await run("A", cmd({ type: "drain.timeout", queueItemId: next.queueItemId, dispatchId: next.dispatchId! }));
  await run("A", cmd({ type: "queue.pause" }));
  await run("A", add("A7", "after the pause"));

  // Thread B: a failed item removed, which releases the hold; then archived.
  await run("B", cmd({ type: "thread.create", workspaceId: "w1", title: "side quest" }));
  await run("B", add("B1"));
  await run("B", add("B2"));
  await ready("B");
  await run("B", cmd({ type: "drain.claim" }));
  await run("B", cmd({ type: "agent.turnStartFailed", queueItemId: "item-B1", reason: "bad attachment", retryable: false }));
  await run("B", cmd({ type: "queue.remove", queueItemId: "item-B1" }));
  await run("B", cmd({ type: "drain.claim" }));
  // B2 starts on its second attempt: its message records two.
  await run("B", cmd({ type: "agent.turnStartFailed", queueItemId: "item-B2", reason: "agent busy", retryable: true }));
  advance(60_000);
  await run("B", cmd({ type: "drain.claim" }));
  await run("B", cmd({ type: "agent.turnStarted", queueItemId: "item-B2", turnId: "turn-b" }));
  await run("B", cmd({ type: "agent.session", status: "error", error: "crashed" }));
  await run("B", add("B3"));
  await run("B", cmd({ type: "thread.archive" }));

  // Thread C: deleted with items queued.
  await run("C", cmd({ type: "thread.create", workspaceId: "w2", title: "doomed" }));
  await run("C", add("C1"));
  await run("C", add("C2", "second", { sendNow: true }));
  await run("C", cmd({ type: "thread.delete" }));

  // Thread D: a send-now on an idle, ready thread.
  await run("D", cmd({ type: "thread.create", workspaceId: "w2" }));
  await ready("D");
  await run("D", add("D1", "right away", { sendNow: true }));
  await run("D", cmd({ type: "agent.turnStarted", queueItemId: "item-D1", turnId: "turn-d" }));
  await run("D", add("D2"));
}
