import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../client/agent.js";
import { codexAdapter } from "../../client/agents/codex.js";
import { eventually } from "../support/poll.js";
import { CODEX_BIN, codexEnv, UNKNOWN_MODEL, workDir } from "../support/agents.js";
import { echoScript, type Reply, type Script } from "../support/model-server.js";
import { AGENT_WAIT_MS, startAgentHarness, turnsIn, type AgentHarness } from "./harness.js";

const root = path.resolve(import.meta.dirname, "../..");

/** The scripted model refuses an unknown model name the way the Responses API does. */
/** A usage-limit refusal as OpenAI sends it: the body's resets_at and the x-codex-* rate-limit headers. */
const usageLimit = (reset: number): Reply => ({
  kind: "error", status: 429, type: "usage_limit_reached", message: "You've hit your usage limit", body: { resets_at: reset, plan_type: "plus" },
  headers: { "x-codex-primary-used-percent": "100", "x-codex-primary-window-minutes": "300", "x-codex-primary-reset-at": String(reset) },
});

/** Every process under `pid`, with its command line. */
function descendants(pid: number): { pid: number; args: string }[] {
  const all = execFileSync("ps", ["-e", "-o", "pid=,ppid=,args="], { encoding: "utf8" })
    .split("\n")
    .flatMap((line) => {
      const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
      return m ? [{ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }] : [];
    });
  const under = (p: number): { pid: number; args: string }[] => all.filter((c) => c.ppid === p).flatMap((c) => [c, ...under(c.pid)]);
  return under(pid);
}

const withModels = (script: Script): Script => (r) =>
  r.body.model === UNKNOWN_MODEL ? { kind: "error", status: 404, message: `The model \`${UNKNOWN_MODEL}\` does not exist` } : script(r);

describe("Codex (real codex app-server, scripted model): model errors and a runtime crash", () => {
  let h: AgentHarness;
  beforeAll(async () => {
    h = await startAgentHarness();
  });
  afterAll(() => h?.close());

  describe("model errors and a Codex crash, under a runtime in this process", () => {
    let runtime: Agent;
    beforeAll(() => {
      runtime = h.runtime(codexAdapter({ cwd: workDir(), approve: "deny", command: CODEX_BIN, env: codexEnv(h.model.url) }));
    });
    // Closed before the runtime-restart test, whose dispatches are for the runtime it starts alone.
    afterAll(() => runtime?.close());

    it("a 429 from the model is a retryable start failure, and the item is retried and runs", async () => {
      let limited = 0;
      h.model.script(withModels((r) => (r.userText === "rate limited once" && limited++ === 0 ? { kind: "error", status: 429, message: "Rate limit reached" } : echoScript(r))));
      const threadId = await h.thread();
      await h.add(threadId, "rate limited once");
      await eventually(async () => expect(turnsIn(await h.events(threadId))[0]?.outcome).toBe("completed"), AGENT_WAIT_MS);
      const failures = (await h.events(threadId)).filter((e) => e.type === "queue.item-send-failed");
      expect(failures).toHaveLength(1);
      expect(failures[0]!.payload).toMatchObject({ final: false });
      expect(h.model.requests.filter((r) => r.userText === "rate limited once").length).toBe(2);
    });

    it("the model unreachable (the scripted model hangs up) is a retryable start failure naming the connection, and the item is retried and runs", async () => {
      let hungUp = 0;
      h.model.script(withModels((r) => (r.userText === "model unreachable once" && hungUp++ === 0 ? { kind: "hangup" } : echoScript(r))));
      const threadId = await h.thread();
      await h.add(threadId, "model unreachable once");
      await eventually(async () => expect(turnsIn(await h.events(threadId))[0]?.outcome).toBe("completed"), AGENT_WAIT_MS);
      const failures = (await h.events(threadId)).filter((e) => e.type === "queue.item-send-failed");
      expect(failures.map((e) => e.payload)).toMatchObject([{ final: false, reason: expect.stringMatching(/^codex: .*(stream disconnected|connection)/i) }]);
      expect(turnsIn(await h.events(threadId))).toHaveLength(1);
    });

    it("a usage limit from the model (429 with the provider's reset) is a retryable start failure that waits for Codex's reset time, then runs once", async () => {
      // The scripted model answers as OpenAI's does at a usage limit: the error body's
      // resets_at and the x-codex-* rate-limit headers, from which Codex tells its client.
      const reset = Math.ceil(Date.now() / 1000) + 3;
      let limited = 0;
      h.model.script(withModels((r) => r.userText === "limited until the reset" && limited++ === 0 ? usageLimit(reset) : echoScript(r)));
      const threadId = await h.thread();
      await h.add(threadId, "limited until the reset");
      await eventually(async () => expect(turnsIn(await h.events(threadId))[0]?.outcome).toBe("completed"), AGENT_WAIT_MS);
      const events = await h.events(threadId);
      // The thread held, rate-limited until the reset Codex gave, and resumed by itself; the
      // item kept its attempt (it was not the item's fault).
      expect(events.filter((e) => e.type === "queue.item-send-failed").map((e) => e.payload)).toMatchObject([
        { final: false, rateLimited: true, reason: expect.stringContaining("usageLimitExceeded") },
      ]);
      expect(events.find((e) => e.type === "queue.paused")?.payload).toMatchObject({ reason: "rate-limited", resumeAt: new Date(reset * 1000).toISOString() });
      expect(events.some((e) => e.type === "queue.resumed")).toBe(true);
      const asked = h.model.requests.filter((r) => r.userText === "limited until the reset");
      expect(asked).toHaveLength(2);
      // The retry waited for the reset the agent gave.
      expect(asked[1]!.at).toBeGreaterThanOrEqual(reset * 1000);
    });

    it("the account's limit used up mid-turn (429 with a reset on the turn's second model request): the turn ends failed, the thread holds rate-limited until Codex's reset and resumes by itself; the next item runs after it", async () => {
      let reset = 0;
      h.model.script((r) => {
        if (r.userText !== "limited mid-turn") return echoScript(r);
        // First a command (the turn has started: Codex shows it as an item), then the limit on
        // the follow-up request. A call to a tool Codex does not have would not do: Codex drops
        // it without an item, so nothing would show that the model worked on the turn.
        if (!JSON.stringify(r.body.input).includes("function_call_output")) return { kind: "tool", name: "exec_command", arguments: { cmd: "echo started" } };
        if (!reset) reset = Math.ceil(Date.now() / 1000) + 4;
        return usageLimit(reset);
      });
      const threadId = await h.thread();
      await h.add(threadId, "limited mid-turn");
      await h.add(threadId, "after the reset");
      const ended = await h.waitForEvent(threadId, "turn.ended");
      expect(ended.payload).toMatchObject({ outcome: "failed", error: expect.stringContaining("usage limit") });
      const held = await h.waitForEvent(threadId, "queue.paused");
      expect(held.payload).toMatchObject({ reason: "rate-limited", resumeAt: new Date(reset * 1000).toISOString() });
      await eventually(async () => expect(turnsIn(await h.events(threadId)).find((t) => t.text === "after the reset")?.outcome).toBe("completed"), AGENT_WAIT_MS);
      expect((await h.events(threadId)).some((e) => e.type === "queue.resumed")).toBe(true);
      expect(h.model.requests.find((r) => r.userText === "after the reset")!.at).toBeGreaterThanOrEqual(reset * 1000);
    });

    it("a bad model name is a permanent start failure: the item fails with the reason and holds the queue", async () => {
      h.model.script(withModels(echoScript));
      const threadId = await h.thread();
      const bad = await h.add(threadId, "use a model that does not exist", { options: { model: UNKNOWN_MODEL } });
      const after = await h.add(threadId, "waits behind the failure");
      await eventually(async () => {
        const snapshot = await h.user.thread.get.query({ threadId });
        expect(snapshot.queue).toMatchObject({ paused: true, pauseReason: "failure" });
        expect(snapshot.queue.items.map((i) => [i.queueItemId, i.status])).toEqual([[bad, "failed"], [after, "pending"]]);
        expect(snapshot.queue.items[0]!.failureReason).toContain(UNKNOWN_MODEL);
      }, AGENT_WAIT_MS);
      // It reached Codex, which asked the model for it by that name: the option was passed on.
      expect(h.model.requests.some((r) => r.body.model === UNKNOWN_MODEL)).toBe(true);
      expect((await h.events(threadId)).some((e) => e.type === "turn.started")).toBe(false);
    });

    it("Codex crashing mid-turn (codex app-server SIGKILLed, the runtime alive): the turn ends failed with the reason and the queue holds; the next item starts Codex again and resumes the thread", async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      h.model.script((r) => (r.userText === "cut short by a crash" ? { kind: "slow", text: "never finished", until: gate } : echoScript(r)));
      const threadId = await h.thread();
      await h.add(threadId, "cut short by a crash");
      await h.waitForEvent(threadId, "turn.started");
      const codexThread = (await h.events(threadId)).flatMap((e) => (e.type === "session.changed" && e.payload.runtimeSessionId ? [e.payload.runtimeSessionId] : []))[0];
      // The native codex process under this test process (the npm launcher's child): the crash.
      const [codex] = descendants(process.pid).filter((p) => /codex-linux[^ ]*\/codex app-server/.test(p.args));
      expect(codex, "a codex app-server process under this test").toBeTruthy();
      process.kill(codex!.pid, "SIGKILL");
      release();

      const ended = await h.waitForEvent(threadId, "turn.ended");
      expect(ended.payload).toMatchObject({ outcome: "failed", error: expect.stringContaining("codex app-server exited") });
      expect((await h.user.thread.get.query({ threadId })).queue).toMatchObject({ paused: true, pauseReason: "failure" });

      await h.add(threadId, "after Codex came back");
      await h.user.queue.resume.mutate({ threadId });
      await eventually(async () => expect(turnsIn(await h.events(threadId)).find((t) => t.text === "after Codex came back")?.outcome).toBe("completed"), AGENT_WAIT_MS);
      // The same Codex thread, resumed by the new codex process: its history went to the model.
      const resumed = h.model.requests.find((r) => r.userText === "after Codex came back")!;
      expect(JSON.stringify(resumed.body.input)).toContain("cut short by a crash");
      const ids = (await h.events(threadId)).flatMap((e) => (e.type === "session.changed" && e.payload.runtimeSessionId ? [e.payload.runtimeSessionId] : []));
      expect(new Set(ids)).toEqual(new Set([codexThread]));
      expect(h.model.requests.filter((r) => r.userText === "cut short by a crash")).toHaveLength(1);
    });
  });

  it("the runtime SIGKILLed mid-turn and started again resumes the Codex thread; nothing runs twice and the queue goes on", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    h.model.script((r) => (r.userText === "interrupted by a crash" ? { kind: "slow", text: "never finished", until: gate } : echoScript(r)));
    const env = { ...codexEnv(h.model.url), PATH: `${path.join(root, "node_modules/.bin")}:${process.env.PATH}` };
    const cwd = workDir();
    const startRuntime = () =>
      spawn(process.execPath, ["--import", "tsx", path.join(root, "src/cli.ts"), "agent", "--codex", "--cwd", cwd, "--approve", "deny", "--url", h.server.url, "--token", h.agentToken], {
        cwd: root, env, stdio: "ignore", detached: true, // its own process group: the kill takes Codex with it
      });
    const killGroup = (p: ChildProcess, signal: NodeJS.Signals) => new Promise((resolve) => {
      p.once("exit", resolve);
      process.kill(-p.pid!, signal);
    });

    const threadId = await h.thread();
    await h.add(threadId, "interrupted by a crash");
    const first = startRuntime();
    let second: ChildProcess | null = null;
    try {
      await h.waitForEvent(threadId, "turn.started");
      const codexThread = (await h.events(threadId)).flatMap((e) => (e.type === "session.changed" && e.payload.runtimeSessionId ? [e.payload.runtimeSessionId] : []))[0];
      expect(codexThread).toBeTruthy();
      await killGroup(first, "SIGKILL");
      release();

      await h.add(threadId, "after the restart");
      second = startRuntime();
      await eventually(async () => expect(turnsIn(await h.events(threadId)).find((t) => t.text === "after the restart")?.outcome).toBe("completed"), AGENT_WAIT_MS);

      const events = await h.events(threadId);
      expect(events.filter((e) => e.type === "queue.item-send-started")).toHaveLength(2);
      expect(h.model.requests.filter((r) => r.userText === "interrupted by a crash")).toHaveLength(1);
      // The same Codex thread: its history (the first message) went to the model with the second.
      const resumed = h.model.requests.find((r) => r.userText === "after the restart")!;
      expect(JSON.stringify(resumed.body.input)).toContain("interrupted by a crash");
      const ids = events.flatMap((e) => (e.type === "session.changed" && e.payload.runtimeSessionId ? [e.payload.runtimeSessionId] : []));
      expect(new Set(ids)).toEqual(new Set([codexThread]));
    } finally {
      if (first.exitCode === null && first.signalCode === null) await killGroup(first, "SIGKILL");
      if (second) await killGroup(second, "SIGTERM");
    }
  });
});
