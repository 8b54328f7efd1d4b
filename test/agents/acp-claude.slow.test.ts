import { existsSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { echoScript } from "../support/model-server.js";
import { eventually } from "../support/poll.js";
import { CLAUDE_ACP_BIN, claudeEnv, workDir } from "../support/agents.js";
import { rateLimitedOnce, startAcp, threeInOrder } from "./acp-shared.js";
import { AGENT_WAIT_MS, startAgentHarness, turnsIn, type AgentHarness } from "./harness.js";

describe("ACP: claude-agent-acp (Claude Code, scripted model) drives a thread's queue", () => {
  let h: AgentHarness;
  const cwd = workDir();
  beforeAll(async () => {
    h = await startAgentHarness();
    startAcp(h, CLAUDE_ACP_BIN, claudeEnv(h.model.url), cwd);
  });
  afterAll(() => h?.close());

  it("three queued items reach Claude Code in order, one prompt each, in one ACP session", () => threeInOrder(h));

  it("a 429 from the model is a retryable start failure through claude-agent-acp; the item is retried and runs once", () => rateLimitedOnce(h));

  it("a permission request (the model asks to write a file) is answered by --approve deny at once: refused, the file not written, the turn completes", async () => {
    const file = path.join(cwd, "written-by-the-agent.txt");
    // The model asks for the Write tool; once it has the tool's result, it answers in text.
    h.model.script((r) =>
      JSON.stringify(r.body.messages).includes("tool_result")
        ? { kind: "text", text: "could not write it" }
        : r.userText === "write the file"
          ? { kind: "tool", name: "Write", arguments: { file_path: file, content: "hello" } }
          : echoScript(r),
    );
    const threadId = await h.thread();
    await h.add(threadId, "write the file");
    await eventually(async () => expect(turnsIn(await h.events(threadId))[0]?.outcome).toBe("completed"), AGENT_WAIT_MS);
    expect(existsSync(file)).toBe(false);
    // The refusal went back to the model as the tool's result.
    expect(h.model.requests.some((r) => JSON.stringify(r.body.messages).includes("tool_result"))).toBe(true);
  });

  it("Stop (thread.interrupt) cancels the prompt (session/cancel): the turn ends interrupted and the queue pauses", async () => {
    h.model.script(() => ({ kind: "slow", text: "never" }));
    const threadId = await h.thread();
    await h.add(threadId, "a long task");
    const next = await h.add(threadId, "waits behind the stop");
    await h.waitForEvent(threadId, "turn.started");
    await h.user.thread.interrupt.mutate({ threadId });
    const ended = await h.waitForEvent(threadId, "turn.ended");
    expect(ended.payload).toMatchObject({ outcome: "interrupted" });
    const snapshot = await h.user.thread.get.query({ threadId });
    expect(snapshot.queue).toMatchObject({ paused: true, pauseReason: "interrupted" });
    expect(snapshot.queue.items.map((i) => i.queueItemId)).toEqual([next]);
  });
});
