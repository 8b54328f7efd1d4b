import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runAgent, TurnStartError, type Agent } from "../../client/agent.js";
import { seedPglite } from "../support/server.js";
import { cleanEnv, serve, turnqueueOnce } from "../server/process.js";
import { connect } from "../support/clients.js";

vi.setConfig({ testTimeout: 240_000, hookTimeout: 180_000 });

type Line = Record<string, unknown> & { msg: string; level: number };

describe("what an operator sees of a real run: the info log and /metrics (real server process, real agent SDK)", () => {
  let dataDir: string;
  let server: Awaited<ReturnType<typeof serve>>;
  let agent: Agent | null = null;
  const lines = () =>
    server
      .stderr()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Line);
  const logged = (msg: string) => lines().filter((l) => l.msg === msg);
  const metric = async (name: string) => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.split(" ")[1]);
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-operate-"));
    await seedPglite(dataDir);
    server = await serve(
      ["--data-dir", dataDir, "--dispatch-timeout-ms", "1500", "--max-attempts", "3", "--retry-base-ms", "50"],
      cleanEnv({ TURNQUEUE_LOG_LEVEL: "info" }),
    );
  });
  afterAll(async () => {
    await agent?.close();
    server?.child.kill("SIGTERM");
    await server?.exited;
    await rm(dataDir, { recursive: true, force: true });
  });

  it("logs start, each dispatch, retry, timeout, hold and refusal with ids; counts them in /metrics; never a token", async () => {
    const { stdout: agentToken } = await turnqueueOnce(["token", "--data-dir", dataDir, "--workspace", "local", "--role", "agent"]);
    const api = connect(server, server.token);
    const { threadId } = await api.thread.create.mutate({ title: "observed" });

    // The agent's "model" is scripted: the first start fails retryably, the second runs;
    // the third item's turn is never started (so it times out).
    let runs = 0;
    agent = runAgent({
      url: server.url,
      token: agentToken.trim(),
      autoReady: true,
      async onTurn(turn) {
        runs++;
        if (turn.dispatch.message.text === "never started") {
          // Hangs until the agent is closed, never starting its turn.
          return new Promise((_, reject) => turn.signal.addEventListener("abort", () => reject(new Error("closed")), { once: true }));
        }
        if (runs === 1) throw new TurnStartError("scripted: busy", { retryable: true });
        await turn.start();
        return { outcome: "completed" };
      },
    });
    const { queueItemId: first } = await api.queue.add.mutate({ threadId, message: { messageId: "m1", text: "do it" } });
    await vi.waitUntil(() => logged("turn ended").length === 1, { timeout: 120_000, interval: 200 });
    const { queueItemId: stuck } = await api.queue.add.mutate({ threadId, message: { messageId: "m2", text: "never started" } });
    await vi.waitUntil(() => logged("queue held").length === 1, { timeout: 120_000, interval: 200 });
    await connect(server, "not-a-token").thread.list.query({}).catch(() => {});

    expect(logged("turnqueue is serving")).toHaveLength(1);
    const dispatched = logged("dispatched");
    expect(dispatched.map((l) => [l.threadId, l.queueItemId, l.attempt])).toEqual([
      [threadId, first, 1],
      [threadId, first, 2],
      [threadId, stuck, 1],
    ]);
    for (const l of dispatched) expect(l).toMatchObject({ level: 30, dispatchId: expect.any(String), kind: "turn" });
    expect(logged("start failed: retry scheduled")).toEqual([
      expect.objectContaining({ threadId, queueItemId: first, reason: "scripted: busy", retryAt: expect.any(String) }),
    ]);
    expect(logged("turn started")).toEqual([expect.objectContaining({ threadId, queueItemId: first, turnId: expect.any(String) })]);
    expect(logged("dispatch timed out: item failed")).toEqual([expect.objectContaining({ threadId, queueItemId: stuck })]);
    expect(logged("queue held")).toEqual([expect.objectContaining({ threadId, reason: "failure" })]);
    await vi.waitUntil(() => logged("call refused").length > 0, { timeout: 30_000, interval: 100 });
    expect(logged("call refused")[0]).toMatchObject({ door: "trpc", path: "thread.list", reason: "UNAUTHORIZED" });
    expect(logged("connection opened").length).toBeGreaterThan(0);

    expect(await metric('turnqueue_dispatches_total{kind="turn"}')).toBe(3);
    expect(await metric("turnqueue_retries_total")).toBe(1);
    expect(await metric("turnqueue_dispatch_timeouts_total")).toBe(1);
    expect(await metric('turnqueue_items_failed_total{reason="timeout"}')).toBe(1);
    expect(await metric('turnqueue_holds_total{reason="failure"}')).toBe(1);
    expect(await metric('turnqueue_queue_items{status="failed"}')).toBe(1);
    expect(await metric('turnqueue_queue_items{status="pending"}')).toBe(0);
    expect(await metric("turnqueue_queue_depth")).toBe(0);
    expect(await metric("turnqueue_dispatch_ready_to_dispatched_seconds_count")).toBe(3);
    expect(await metric("turnqueue_dispatch_dispatched_to_started_seconds_count")).toBe(1);
    expect(await metric('turnqueue_refusals_total{door="trpc",reason="UNAUTHORIZED"}')).toBe(1);
    expect(await metric('turnqueue_connections_total{door="trpc"}')).toBeGreaterThanOrEqual(1);

    expect(server.stderr()).not.toContain(server.token);
    expect(server.stderr()).not.toContain(agentToken.trim());
  });

  it("logs the stop", async () => {
    await agent?.close();
    agent = null;
    server.child.kill("SIGTERM");
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(logged("turnqueue stopped")).toHaveLength(1);
  });
});
