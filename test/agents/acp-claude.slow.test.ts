import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLAUDE_ACP_BIN, claudeEnv, workDir } from "../support/agents.js";
import { rateLimitedOnce, startAcp, threeInOrder } from "./acp-shared.js";
import { startAgentHarness, type AgentHarness } from "./harness.js";

describe("ACP: claude-agent-acp (Claude Code, scripted model) drives a thread's queue", () => {
  let h: AgentHarness;
  beforeAll(async () => {
    h = await startAgentHarness();
    startAcp(h, CLAUDE_ACP_BIN, claudeEnv(h.model.url), workDir());
  });
  afterAll(() => h?.close());

  it("three queued items reach Claude Code in order, one prompt each, in one ACP session", () => threeInOrder(h));

  it("a 429 from the model is a retryable start failure through claude-agent-acp; the item is retried and runs once", () => rateLimitedOnce(h));

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
