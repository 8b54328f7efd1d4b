import { expect } from "vitest";
import { acpAdapter } from "../../client/agents/acp.js";
import { eventually } from "../support/poll.js";
import { echoScript } from "../support/model-server.js";
import { AGENT_WAIT_MS, turnsIn, type AgentHarness } from "./harness.js";

/** Starts an ACP runtime on `command` in the harness. */
export const startAcp = (h: AgentHarness, command: string, env: NodeJS.ProcessEnv, cwd: string) =>
  h.runtime(acpAdapter({ command, cwd, approve: "deny", env }));

/** Three queued items reach the agent in order, one prompt (turn) each, all completed. */
export async function threeInOrder(h: AgentHarness) {
  h.model.script(echoScript);
  const threadId = await h.thread();
  const texts = ["first task", "second task", "third task"];
  for (const text of texts) await h.add(threadId, text);
  await eventually(async () => expect(turnsIn(await h.events(threadId)).filter((t) => t.outcome)).toHaveLength(3), AGENT_WAIT_MS);
  const turns = turnsIn(await h.events(threadId));
  expect(turns.map((t) => [t.text, t.outcome])).toEqual(texts.map((t) => [t, "completed"]));
  expect(new Set(turns.map((t) => t.turnId)).size).toBe(3);
  // What the model was asked, in order: each task once (agents may add requests of their own).
  const asked = h.model.requests.map((r) => JSON.stringify(r.body)).flatMap((b) => texts.filter((t) => b.includes(t)).slice(-1));
  expect([...new Set(asked)]).toEqual(texts);
  const sessions = (await h.events(threadId)).flatMap((e) => (e.type === "session.changed" && e.payload.runtimeSessionId ? [e.payload.runtimeSessionId] : []));
  expect(sessions).toHaveLength(1);
}

/**
 * A 429 from the model reaches the runtime as the agent's error (claude-agent-acp: the API
 * error in the message; codex-acp: in the error's data): a retryable start failure whose
 * reason says what happened, and the item is retried and runs once.
 */
export async function rateLimitedOnce(h: AgentHarness) {
  // Every request for the task is refused until the runtime reported the failure: agents
  // ask the model more than once per prompt (Claude Code checks the topic first).
  let limited = true;
  h.model.script((r) => (r.userText === "rate limited once" && limited ? { kind: "error", status: 429, message: "Rate limit reached" } : echoScript(r)));
  const threadId = await h.thread();
  await h.add(threadId, "rate limited once");
  const failed = await h.waitForEvent(threadId, "queue.item-send-failed");
  limited = false;
  expect(failed.payload).toMatchObject({ final: false, reason: expect.stringContaining("429") });
  await eventually(async () => expect(turnsIn(await h.events(threadId))[0]?.outcome).toBe("completed"), AGENT_WAIT_MS);
  const events = await h.events(threadId);
  expect(events.filter((e) => e.type === "queue.item-send-failed").every((e) => e.payload.final === false)).toBe(true);
  expect(turnsIn(events)).toHaveLength(1);
}
