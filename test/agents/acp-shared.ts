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
