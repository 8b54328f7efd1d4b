/**
 * npm run bench:agents — what Turnqueue adds in front of a real agent.
 *
 * For Codex (`codex app-server`) and one ACP agent (codex-acp): the time from `queue.add` on
 * an idle thread to the scripted model server receiving the agent's request for that turn,
 * p50 / p99. Beside it, in the same run, the same agent driven directly (its own protocol,
 * no Turnqueue: `turn/start`, `session/prompt`) on a warm thread/session, and the ratio.
 * Each sample waits for the previous turn to end, so the thread is idle when it is queued.
 * Only the model is scripted (it answers at once); the agents are the real binaries.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable, Writable } from "node:stream";
import * as acp from "@agentclientprotocol/sdk";
import { runAgent, type AgentAdapter } from "../client/agent.js";
import { acpAdapter } from "../client/agents/acp.js";
import { codexAdapter } from "../client/agents/codex.js";
import { JsonlRpc } from "../client/agents/jsonl-rpc.js";
import { createTransport } from "../client/transport.js";
import { loadConfig } from "../src/config.js";
import { startTurnqueue } from "../src/server.js";
import { CODEX_ACP_BIN, CODEX_BIN, codexEnv, workDir } from "../test/support/agents.js";
import { startModelServer, type ModelServer } from "../test/support/model-server.js";

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 20);
const now = () => performance.timeOrigin + performance.now();
const percentile = (samples: number[], p: number) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

/**
 * Runs `SAMPLES + 1` turns (the first warms up) and returns queue-to-model latencies in ms.
 * `send` queues one turn and resolves with a promise of its end.
 */
async function measure(model: ModelServer, label: string, send: (text: string) => Promise<{ ended: Promise<unknown> }>) {
  const samples: number[] = [];
  for (let i = 0; i <= SAMPLES; i++) {
    const text = `${label} sample ${i} ${Math.random()}`;
    const arrived = model.nextRequest((r) => r.userText === text);
    const t0 = now();
    const { ended: done } = await send(text);
    const request = await arrived;
    if (i > 0) samples.push(request.at - t0);
    if (process.env.BENCH_DEBUG) console.error(label, i, request.at - t0);
    await done;
  }
  return samples;
}

async function viaTurnqueue(model: ModelServer, label: string, adapter: AgentAdapter) {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-bench-agents-"));
  const config = await loadConfig({ env: process.env, flags: { dataDir, port: "0", logLevel: "warn" } });
  const app = await startTurnqueue(config);
  try {
    const token = (role: "user" | "agent") => app.services.auth.issue({ sub: `bench-${role}`, workspaceId: "bench", role });
    const user = createTransport({ url: app.url, token: await token("user") });
    const agent = runAgent({ url: app.url, token: await token("agent"), ...adapter });
    const { threadId } = await user.thread.create.mutate({});
    const ended = async (text: string) => {
      for (;;) {
        const events = await app.services.store.readThread(threadId, 0);
        const sent = events.find((e) => e.type === "message.sent" && e.payload.text === text);
        const turnId = sent?.type === "message.sent" ? sent.payload.turnId : null;
        if (turnId && events.some((e) => e.type === "turn.ended" && e.payload.turnId === turnId)) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    let n = 0;
    const samples = await measure(model, label, async (text) => {
      await user.queue.add.mutate({ threadId, message: { messageId: `m${n++}`, text } });
      return { ended: ended(text) };
    });
    await agent.close();
    await user.close();
    return samples;
  } finally {
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function codexDirect(model: ModelServer) {
  const child = spawn(CODEX_BIN, ["app-server"], { env: codexEnv(model.url), stdio: ["pipe", "pipe", "ignore"] });
  const completed = new Map<string, () => void>();
  // A turn's completion may be announced before turn/start's answer: recorded either way.
  const done = new Set<string>();
  const rpc = new JsonlRpc(child.stdout, child.stdin, {
    onNotification: (method, params) => {
      if (method !== "turn/completed") return;
      const id = (params as { turn: { id: string } }).turn.id;
      done.add(id);
      completed.get(id)?.();
    },
    onRequest: async () => ({ decision: "decline" }),
  });
  await rpc.request("initialize", { clientInfo: { name: "bench", title: null, version: "0" }, capabilities: null });
  rpc.notify("initialized");
  const { thread } = await rpc.request<{ thread: { id: string } }>("thread/start", { cwd: workDir(), approvalPolicy: "never", sandbox: "read-only" });
  const rpcCompleted = (id: string) => (done.has(id) ? Promise.resolve() : new Promise<void>((resolve) => completed.set(id, resolve)));
  const samples = await measure(model, "codex direct", async (text) => {
    const { turn } = await rpc.request<{ turn: { id: string } }>("turn/start", { threadId: thread.id, input: [{ type: "text", text, text_elements: [] }] });
    return { ended: rpcCompleted(turn.id) };
  });
  child.kill("SIGTERM");
  return samples;
}

async function acpDirect(model: ModelServer) {
  const child = spawn(CODEX_ACP_BIN, [], { env: codexEnv(model.url), stdio: ["pipe", "pipe", "ignore"] });
  const connection = acp
    .client({ name: "bench" })
    .onRequest(acp.methods.client.session.requestPermission, () => ({ outcome: { outcome: "cancelled" } }))
    .connect(acp.ndJsonStream(Writable.toWeb(child.stdin), Readable.toWeb(child.stdout) as ReadableStream<Uint8Array>));
  await connection.agent.request(acp.methods.agent.initialize, { protocolVersion: acp.PROTOCOL_VERSION, clientCapabilities: {} });
  const { sessionId } = await connection.agent.request(acp.methods.agent.session.new, { cwd: workDir(), mcpServers: [] });
  const samples = await measure(model, "acp direct", async (text) => {
    return { ended: connection.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: "text", text }] }) };
  });
  connection.close();
  child.kill("SIGTERM");
  return samples;
}

const model = await startModelServer();
try {
  const rows: [string, number[], number[]][] = [];
  const codexVia = await viaTurnqueue(model, "codex via turnqueue", codexAdapter({ cwd: workDir(), approve: "deny", command: CODEX_BIN, env: codexEnv(model.url) }));
  rows.push(["Codex (codex app-server)", codexVia, await codexDirect(model)]);
  const acpVia = await viaTurnqueue(model, "acp via turnqueue", acpAdapter({ command: CODEX_ACP_BIN, cwd: workDir(), approve: "deny", env: codexEnv(model.url) }));
  rows.push(["ACP (codex-acp)", acpVia, await acpDirect(model)]);

  console.log(`queue.add on an idle thread → the model receives the agent's request (${SAMPLES} samples each)`);
  for (const [name, via, direct] of rows) {
    const [v50, v99, d50, d99] = [percentile(via, 50), percentile(via, 99), percentile(direct, 50), percentile(direct, 99)];
    console.log(
      `${name.padEnd(26)} via Turnqueue p50 ${v50.toFixed(1)} ms p99 ${v99.toFixed(1)} ms | direct p50 ${d50.toFixed(1)} ms p99 ${d99.toFixed(1)} ms | ratio p50 ${(v50 / d50).toFixed(2)}x, added ${(v50 - d50).toFixed(1)} ms`,
    );
  }
} finally {
  await model.close();
}
process.exit(0);
