/**
 * npm run bench:agents — what Turnqueue adds in front of a real agent.
 *
 * For Codex (`codex app-server`) and one ACP agent (codex-acp), two ways to send one message
 * to the same agent, sampled in turns within one run so both see the same machine load:
 *
 * - via Turnqueue: from calling `queue.add` on an idle thread (the agent's session ready,
 *   nothing queued or running) to the model receiving the agent's request for that message.
 *   The path is: the user's HTTP call, the append, the drain reactor's claim, the dispatch on
 *   the agent's WebSocket, the adapter's `turn/start` (`session/prompt`), and the agent's
 *   own work up to its model request.
 * - direct: from writing the same `turn/start` (`session/prompt`) to the agent, with no
 *   Turnqueue, to the model receiving the request.
 *
 * Both start from a warm agent: its process running and its Codex thread (ACP session) open
 * with one turn done (the first sample of each side is a warm-up, not counted), and both use
 * the same thread settings and messages, so the difference is Turnqueue's path alone. Each
 * sample waits for the previous turn to end (the Turnqueue thread is idle again) and for the
 * bench process to settle; nothing polls while a sample runs. The model is a scripted server
 * in a process of its own that answers at once; the agents are the real binaries.
 */
import { fork, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable, Writable } from "node:stream";
import * as acp from "@agentclientprotocol/sdk";
import { runAgent, type AgentAdapter } from "../client/agent.js";
import { acpAdapter } from "../client/agents/acp.js";
import { codexAdapter } from "../client/agents/codex.js";
import { JsonlRpc } from "../client/agents/jsonl-rpc.js";
import type { ThreadStartParams } from "../client/agents/codex-protocol/v2/ThreadStartParams.js";
import { createTransport } from "../client/transport.js";
import { loadConfig } from "../src/config.js";
import { startTurnqueue } from "../src/server.js";
import { CODEX_ACP_BIN, CODEX_BIN, codexEnv, workDir } from "../test/support/agents.js";

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 20);
const now = () => performance.timeOrigin + performance.now();
const percentile = (samples: number[], p: number) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

/** The scripted model in its own process: arrival times of requests, by the user text they carry. */
interface Model {
  url: string;
  arrival(text: string): Promise<number>;
  close(): void;
}

async function startModel(): Promise<Model> {
  const child = fork(path.join(import.meta.dirname, "model-process.ts"), [], { execArgv: ["--import", "tsx"], stdio: "inherit" });
  const waiting = new Map<string, (at: number) => void>();
  const arrived = new Map<string, number>();
  const url = await new Promise<string>((resolve, reject) => {
    child.once("error", reject);
    child.on("message", (m: { kind: "ready"; url: string } | { kind: "request"; userText: string; at: number }) => {
      if (m.kind === "ready") return resolve(m.url);
      const waiter = waiting.get(m.userText);
      if (waiter) waiter(m.at);
      else arrived.set(m.userText, m.at);
    });
  });
  return {
    url,
    arrival: (text) => {
      const at = arrived.get(text);
      return at !== undefined ? Promise.resolve(at) : new Promise((resolve) => waiting.set(text, resolve));
    },
    close: () => child.disconnect(),
  };
}

/** One way to send a message to the agent: resolves once it is sent, with a promise of the turn's end. */
type Send = (text: string) => Promise<{ ended: () => Promise<unknown> }>;

interface Side {
  name: string;
  send: Send;
  close(): Promise<void>;
}

/** One sample: the time from sending to the model receiving the request, in ms. */
async function sample(model: Model, side: Side, i: number): Promise<number> {
  const text = `${side.name} sample ${i} ${Math.random()}`;
  const arrival = model.arrival(text);
  const t0 = now();
  const { ended } = await side.send(text);
  const ms = (await arrival) - t0;
  await ended();
  // Let what the turn's end set off (reports, the drain reactor's look) finish before the next sample.
  await new Promise((resolve) => setTimeout(resolve, 50));
  return ms;
}

/** Samples both sides in turns (alternating which goes first); the first sample of each is a warm-up. */
async function compare(model: Model, via: Side, direct: Side) {
  const samples = { via: [] as number[], direct: [] as number[] };
  for (let i = 0; i <= SAMPLES; i++) {
    const order = i % 2 === 0 ? (["via", "direct"] as const) : (["direct", "via"] as const);
    for (const which of order) {
      const ms = await sample(model, which === "via" ? via : direct, i);
      if (process.env.BENCH_DEBUG) console.error(`${which === "via" ? via.name : direct.name} ${i} ${ms.toFixed(1)} ms`);
      if (i > 0) samples[which].push(ms);
    }
  }
  return samples;
}

/** A Turnqueue server (embedded database) and an agent runtime with `adapter`, on one thread. */
async function viaTurnqueue(name: string, adapter: AgentAdapter): Promise<Side> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-bench-agents-"));
  const config = await loadConfig({ env: process.env, flags: { dataDir, port: "0", logLevel: "warn" } });
  const app = await startTurnqueue(config);
  const token = (role: "user" | "agent") => app.services.auth.issue({ sub: `bench-${role}`, workspaceId: "bench", role });
  const user = createTransport({ url: app.url, token: await token("user") });
  const agent = runAgent({ url: app.url, token: await token("agent"), ...adapter });
  const { threadId } = await user.thread.create.mutate({});
  let n = 0;
  return {
    name,
    async send(text) {
      await user.queue.add.mutate({ threadId, message: { messageId: `m${n++}`, text } });
      // The runtime reports the turn's end and is idle once the server has taken the report.
      return { ended: () => agent.idle() };
    },
    async close() {
      await agent.close();
      await user.close();
      await app.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The thread settings the Codex adapter uses with `--approve deny` (see client/agents/codex.ts). */
const codexThread = (cwd: string): ThreadStartParams => ({ cwd, approvalPolicy: "on-request", sandbox: "read-only" });

async function codexDirect(modelUrl: string, cwd: string): Promise<Side> {
  const child = spawn(CODEX_BIN, ["app-server"], { cwd, env: codexEnv(modelUrl), stdio: ["pipe", "pipe", "ignore"] });
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
  const { thread } = await rpc.request<{ thread: { id: string } }>("thread/start", codexThread(cwd));
  const turnCompleted = (id: string) => (done.has(id) ? Promise.resolve() : new Promise<void>((resolve) => completed.set(id, resolve)));
  let n = 0;
  return {
    name: "codex direct",
    async send(text) {
      const { turn } = await rpc.request<{ turn: { id: string } }>("turn/start", {
        threadId: thread.id,
        clientUserMessageId: `d${n++}`,
        input: [{ type: "text", text, text_elements: [] }],
      });
      return { ended: () => turnCompleted(turn.id) };
    },
    async close() {
      child.kill("SIGTERM");
    },
  };
}

async function acpDirect(modelUrl: string, cwd: string): Promise<Side> {
  const child = spawn(CODEX_ACP_BIN, [], { env: codexEnv(modelUrl), stdio: ["pipe", "pipe", "ignore"] });
  const connection = acp
    .client({ name: "bench" })
    .onRequest(acp.methods.client.session.requestPermission, () => ({ outcome: { outcome: "cancelled" } }))
    .connect(acp.ndJsonStream(Writable.toWeb(child.stdin), Readable.toWeb(child.stdout) as ReadableStream<Uint8Array>));
  await connection.agent.request(acp.methods.agent.initialize, { protocolVersion: acp.PROTOCOL_VERSION, clientCapabilities: {} });
  const { sessionId } = await connection.agent.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
  return {
    name: "acp direct",
    async send(text) {
      const prompt = connection.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: "text", text }] });
      return { ended: () => prompt };
    },
    async close() {
      connection.close();
      child.kill("SIGTERM");
    },
  };
}

const model = await startModel();
try {
  const rows: [string, { via: number[]; direct: number[] }][] = [];
  {
    const cwd = workDir();
    const via = await viaTurnqueue("codex via turnqueue", codexAdapter({ cwd, approve: "deny", command: CODEX_BIN, env: codexEnv(model.url) }));
    const direct = await codexDirect(model.url, cwd);
    rows.push(["Codex (codex app-server)", await compare(model, via, direct)]);
    await Promise.all([via.close(), direct.close()]);
  }
  {
    const cwd = workDir();
    const via = await viaTurnqueue("acp via turnqueue", acpAdapter({ command: CODEX_ACP_BIN, cwd, approve: "deny", env: codexEnv(model.url) }));
    const direct = await acpDirect(model.url, cwd);
    rows.push(["ACP (codex-acp)", await compare(model, via, direct)]);
    await Promise.all([via.close(), direct.close()]);
  }

  console.log(`queue.add on an idle thread → the model receives the agent's request (${SAMPLES} samples each, interleaved, warm agents)`);
  for (const [name, { via, direct }] of rows) {
    const [v50, v99, d50, d99] = [percentile(via, 50), percentile(via, 99), percentile(direct, 50), percentile(direct, 99)];
    console.log(
      `${name.padEnd(26)} via Turnqueue p50 ${v50.toFixed(1)} ms p99 ${v99.toFixed(1)} ms | direct p50 ${d50.toFixed(1)} ms p99 ${d99.toFixed(1)} ms | ratio p50 ${(v50 / d50).toFixed(2)}x, added ${(v50 - d50).toFixed(1)} ms`,
    );
  }
} finally {
  model.close();
}
process.exit(0);
