import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../client/agent.js";
import { acpAdapter } from "../../client/agents/acp.js";
import { eventually } from "../support/poll.js";
import { CODEX_ACP_BIN, codexEnv, workDir } from "../support/agents.js";
import { echoScript } from "../support/model-server.js";
import { rateLimitedOnce, startAcp, threeInOrder } from "./acp-shared.js";
import { AGENT_WAIT_MS, startAgentHarness, turnsIn, type AgentHarness } from "./harness.js";

describe("ACP: codex-acp (the real agent, scripted model) drives a thread's queue", () => {
  let h: AgentHarness;
  beforeAll(async () => {
    h = await startAgentHarness();
    // A model Codex has metadata for (it offers the models the settings test picks from).
    startAcp(h, CODEX_ACP_BIN, codexEnv(h.model.url, "gpt-5.5"), workDir());
  });
  afterAll(() => h?.close());

  it("three queued items reach codex-acp in order, one prompt each, in one ACP session", () => threeInOrder(h));

  it("a 429 from the model is a retryable start failure through codex-acp; the item is retried and runs once", () => rateLimitedOnce(h));

  it("a queued item's model and effort set the session's settings (session/set_config_option) and reach the model request", async () => {
    h.model.script(echoScript);
    const threadId = await h.thread();
    await h.add(threadId, "with a smaller model", { options: { model: "gpt-5.4-mini", effort: "low" } });
    await eventually(async () => expect(turnsIn(await h.events(threadId))[0]?.outcome).toBe("completed"), AGENT_WAIT_MS);
    const request = h.model.requests.find((r) => r.userText === "with a smaller model")!;
    expect(request.body).toMatchObject({ model: "gpt-5.4-mini", reasoning: { effort: "low" } });
  });

  it("a model the agent does not offer, or an option it has no setting for, fails the item with what it offers and holds the queue; nothing reaches the model", async () => {
    h.model.script(echoScript);
    const threadId = await h.thread();
    const bad = await h.add(threadId, "on a model nobody offers", { options: { model: "no-such-model" } });
    const failed = await h.waitForEvent(threadId, "queue.item-send-failed", (e) => (e.payload as { queueItemId: string }).queueItemId === bad);
    expect(failed.payload).toMatchObject({ final: true, reason: expect.stringMatching(/cannot take the model "no-such-model" \(it offers gpt-5\.5, .*gpt-5\.4-mini/) });
    expect((await h.user.thread.get.query({ threadId })).queue).toMatchObject({ paused: true, pauseReason: "failure" });

    await h.user.queue.remove.mutate({ threadId, queueItemId: bad });
    const hot = await h.add(threadId, "run hot", { options: { temperature: "2" } });
    await h.user.queue.resume.mutate({ threadId });
    const refused = await h.waitForEvent(threadId, "queue.item-send-failed", (e) => (e.payload as { queueItemId: string }).queueItemId === hot);
    expect(refused.payload).toMatchObject({ final: true, reason: expect.stringContaining('this ACP agent cannot take the option "temperature" (it takes model, mode, effort)') });
    expect(h.model.requests.some((r) => /nobody offers|run hot/.test(r.userText))).toBe(false);
  });

  it("send-now (a steer) during a prompt is refused with the reason — ACP has no steer — the item fails and the queue holds; the running turn goes on", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    h.model.script((r) => (r.userText === "a long prompt" ? { kind: "slow", text: "done", until: gate } : echoScript(r)));
    const threadId = await h.thread();
    await h.add(threadId, "a long prompt");
    const started = await h.waitForEvent(threadId, "turn.started");
    const steer = await h.add(threadId, "and this too", { delivery: "steer" });
    const refused = await h.waitForEvent(threadId, "queue.item-send-failed", (e) => (e.payload as { queueItemId: string }).queueItemId === steer);
    expect(refused.payload).toMatchObject({ final: true, reason: expect.stringContaining("the protocol has no steer") });
    release();
    const ended = await h.waitForEvent(threadId, "turn.ended");
    expect(ended.payload).toMatchObject({ turnId: (started.payload as { turnId: string }).turnId, outcome: "completed" });
    expect((await h.user.thread.get.query({ threadId })).queue).toMatchObject({ paused: true, pauseReason: "failure" });
    expect(h.model.requests.some((r) => JSON.stringify(r.body).includes("and this too"))).toBe(false);
  });
});

describe("ACP: codex-acp (the real agent, scripted model) on a model Codex has no metadata for", () => {
  let h: AgentHarness;
  /** codex-acp's log: it logs each warning it forwards to the client as agent text. */
  const log: string[] = [];
  /** Marks this runtime's agent processes (their environment holds it). */
  const mark = `TURNQUEUE_TEST_RUNTIME=${randomUUID()}`;
  let runtime: Agent;
  beforeAll(async () => {
    h = await startAgentHarness();
    // For this model codex-acp sends Codex's warning (no model metadata) as agent text at the
    // start of every prompt, before it asks the model.
    const env = { ...codexEnv(h.model.url, "scripted-model"), RUST_LOG: "warn", TURNQUEUE_TEST_RUNTIME: mark.split("=")[1] };
    runtime = h.runtime(acpAdapter({ command: CODEX_ACP_BIN, cwd: workDir(), approve: "deny", env, onStderr: (line) => log.push(line) }));
  });
  afterAll(() => h?.close());

  it("a 429 from the model after codex-acp's warning text is still a retryable start failure; the item is retried and runs once", async () => {
    await rateLimitedOnce(h);
    expect(log.some((line) => line.includes("Model metadata for `scripted-model` not found")), "codex-acp sent its warning").toBe(true);
  });

  it("a stopped runtime leaves no agent process behind: codex-acp's npm wrapper and the native agent it runs both end", async () => {
    // The agent ran a prompt in the test above: the wrapper and the native agent run now.
    expect(processesWith(mark).length, "the agent runs while the runtime does").toBeGreaterThanOrEqual(2);
    await runtime.close();
    await eventually(() => expect(processesWith(mark)).toEqual([]), 10_000);
  });
});

/** The command lines of the processes whose environment holds `entry`. */
function processesWith(entry: string): string[] {
  return readdirSync("/proc").flatMap((pid) => {
    try {
      return /^\d+$/.test(pid) && readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(entry) ? [readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")] : [];
    } catch {
      return []; // gone meanwhile, or not ours to read
    }
  });
}
