import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codexAdapter } from "../../client/agents/codex.js";
import { eventually } from "../support/poll.js";
import { CODEX_BIN, codexEnv, workDir } from "../support/agents.js";
import { echoScript } from "../support/model-server.js";
import { AGENT_WAIT_MS, startAgentHarness, turnsIn, type AgentHarness } from "./harness.js";

/** A 1×1 PNG, as a data URL. */
const PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/** Codex generates UUIDv7 turn and thread ids. */
const CODEX_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("Codex (the real codex app-server, scripted model) drives a thread's queue", () => {
  let h: AgentHarness;
  beforeAll(async () => {
    h = await startAgentHarness();
    h.runtime(codexAdapter({ cwd: workDir(), approve: "deny", command: CODEX_BIN, env: codexEnv(h.model.url) }));
  });
  afterAll(() => h?.close());

  it("three queued items reach Codex in order, one Codex turn each, with Codex's turn ids in the thread's events", async () => {
    h.model.script(echoScript);
    const threadId = await h.thread();
    for (const text of ["first task", "second task", "third task"]) await h.add(threadId, text);
    await eventually(async () => expect(turnsIn(await h.events(threadId)).filter((t) => t.outcome)).toHaveLength(3), AGENT_WAIT_MS);

    const turns = turnsIn(await h.events(threadId));
    expect(turns.map((t) => [t.text, t.outcome])).toEqual([
      ["first task", "completed"], ["second task", "completed"], ["third task", "completed"],
    ]);
    for (const t of turns) expect(t.turnId).toMatch(CODEX_ID);
    expect(new Set(turns.map((t) => t.turnId)).size).toBe(3);
    const asked = h.model.requests.filter((r) => r.userText.endsWith("task")).map((r) => r.userText);
    expect(asked).toEqual(["first task", "second task", "third task"]);
    // One Codex thread for the whole queue, stored with the thread for a restarted runtime.
    const sessions = (await h.events(threadId)).flatMap((e) => (e.type === "session.changed" && e.payload.runtimeSessionId ? [e.payload.runtimeSessionId] : []));
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatch(CODEX_ID);
  });

  it("a queued item's model, effort and attachments reach Codex's model request: the image as an input image, the file by its path", async () => {
    h.model.script(echoScript);
    const threadId = await h.thread();
    const dir = workDir();
    const notes = path.join(dir, "notes.md");
    writeFileSync(notes, "# Notes\nthe attached file\n");
    await h.user.queue.add.mutate({
      threadId,
      message: {
        messageId: randomUUID(),
        text: "look at these",
        attachments: [
          { name: "pixel.png", mimeType: "image/png", url: PIXEL, size: 68 },
          { name: "notes.md", mimeType: "text/markdown", url: `file://${notes}`, size: 27 },
        ],
      },
      options: { model: "scripted-model-2", effort: "low" },
    });
    await eventually(async () => expect(turnsIn(await h.events(threadId))[0]?.outcome).toBe("completed"), AGENT_WAIT_MS);
    const request = h.model.requests.find((r) => r.userText.includes("look at these"))!;
    expect(request.body).toMatchObject({ model: "scripted-model-2", reasoning: { effort: "low" } });
    const input = JSON.stringify(request.body.input);
    expect(input).toContain(`"image_url":"${PIXEL}"`);
    expect(input).toContain(notes);
  });

  it("send-now during a turn steers the running Codex turn; Stop (thread.interrupt) ends the turn interrupted and pauses the queue", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    h.model.script((r) => (r.userText === "a long task" ? { kind: "slow", text: "done", until: gate } : { kind: "slow", text: "never" }));
    const threadId = await h.thread();
    await h.add(threadId, "a long task");
    const started = await h.waitForEvent(threadId, "turn.started");
    const turnId = (started.payload as { turnId: string }).turnId;

    await h.add(threadId, "also look at the tests", { delivery: "steer" });
    const steered = await h.waitForEvent(threadId, "message.sent", (e) => (e.payload as { text: string }).text === "also look at the tests");
    expect(steered.payload).toMatchObject({ turnId });
    // The steer reached Codex inside the same turn: its next model request carries it.
    release();
    await eventually(() => expect(h.model.requests.some((r) => JSON.stringify(r.body).includes("also look at the tests"))).toBe(true), AGENT_WAIT_MS);

    const next = await h.add(threadId, "waits behind the stop");
    await h.user.thread.interrupt.mutate({ threadId });
    const ended = await h.waitForEvent(threadId, "turn.ended");
    expect(ended.payload).toMatchObject({ turnId, outcome: "interrupted" });
    const snapshot = await h.user.thread.get.query({ threadId });
    expect(snapshot.queue).toMatchObject({ paused: true, pauseReason: "interrupted" });
    expect(snapshot.queue.items.map((i) => [i.queueItemId, i.status])).toEqual([[next, "pending"]]);
  });

  it("a turn Codex cannot take as queued (an unknown option, an oversized attachment) fails with the reason and holds the queue; the runtime goes on", async () => {
    h.model.script(echoScript);
    const threadId = await h.thread();
    const unknown = await h.add(threadId, "run hot", { options: { temperature: "2" } });
    const failed = await h.waitForEvent(threadId, "queue.item-send-failed", (e) => (e.payload as { queueItemId: string }).queueItemId === unknown);
    expect(failed.payload).toMatchObject({ final: true, reason: expect.stringContaining('codex cannot take the option "temperature" (it takes model, effort)') });
    let snapshot = await h.user.thread.get.query({ threadId });
    expect(snapshot.queue).toMatchObject({ paused: true, pauseReason: "failure" });

    await h.user.queue.remove.mutate({ threadId, queueItemId: unknown });
    const { queueItemId: big } = await h.user.queue.add.mutate({
      threadId,
      message: { messageId: "too-big", text: "look at this video", attachments: [{ name: "demo.mp4", mimeType: "video/mp4", url: "file:///tmp/demo.mp4", size: 200 * 1024 * 1024 }] },
    });
    await h.user.queue.resume.mutate({ threadId });
    const refused = await h.waitForEvent(threadId, "queue.item-send-failed", (e) => (e.payload as { queueItemId: string }).queueItemId === big);
    expect(refused.payload).toMatchObject({ final: true, reason: expect.stringContaining('codex cannot take the attachment "demo.mp4"') });

    // Nothing reached the model, and the same runtime still runs the next turn.
    expect(h.model.requests.some((r) => /run hot|this video/.test(r.userText))).toBe(false);
    await h.user.queue.remove.mutate({ threadId, queueItemId: big });
    await h.add(threadId, "a plain task");
    await h.user.queue.resume.mutate({ threadId });
    await eventually(async () => expect(turnsIn(await h.events(threadId)).filter((t) => t.outcome === "completed")).toHaveLength(1), AGENT_WAIT_MS);
    snapshot = await h.user.thread.get.query({ threadId });
    expect(snapshot.queue.paused).toBe(false);
  });
});
