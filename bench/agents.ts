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
 * Turnqueue is measured as a user runs it: `turnqueue serve` (the compiled server, on its
 * embedded database: run `npm run build` first) in its own process; the user's client and
 * the agent runtime (`runAgent` with the Codex or ACP adapter) run in the bench's process.
 * Both start from a warm agent: its process running and its Codex thread (ACP session) open
 * with one turn done (the first sample of each side is a warm-up, not counted), and both use
 * the same thread settings and messages, so the difference is Turnqueue's path alone. Each
 * sample waits for the previous turn to end (the Turnqueue thread is idle again) and for the
 * bench process to settle; nothing polls while a sample runs. The model is a scripted server
 * in a process of its own that answers at once; the agents are the real binaries.
 *
 * Each sample also marks when the message's `turn/start` (`session/prompt`) was written to
 * the agent's stdin, on both sides: the agent's own part (that write → the model's request)
 * is then compared like with like, apart from the runtime's and the adapter's share. An agent
 * slower via Turnqueue from its own write on has not been sent more work (the same requests
 * reach it both ways): it shares the machine with what Turnqueue does meanwhile (the server
 * answering `queue.add`, the user's client reading that answer).
 *
 * `BENCH_BREAKDOWN=1` also tells where Turnqueue's part of each sample goes: the server runs
 * with the OpenTelemetry SDK (bench/spans-to-file.mjs: its spans, in batches, to a file), the
 * runtime's side is timed in this process (the turn handler's entry; the write to the
 * agent), and each sample's trace is cut at: the server receiving `queue.add`, its append,
 * the drain reactor's claim starting, the claim's append, the dispatch sent on the agent's
 * stream, the runtime's turn handler, the adapter's write to the agent, the model's request.
 * The machine is shared, so read the shares, not the milliseconds.
 */
import { fork, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import net from "node:net";
import { Readable, Writable } from "node:stream";
import * as acp from "@agentclientprotocol/sdk";
import { runAgent, type AgentAdapter } from "../client/agent.js";
import { acpAdapter } from "../client/agents/acp.js";
import { codexAdapter } from "../client/agents/codex.js";
import { JsonlRpc } from "../client/agents/jsonl-rpc.js";
import type { ThreadStartParams } from "../client/agents/codex-protocol/v2/ThreadStartParams.js";
import { createTransport } from "../client/transport.js";
import { startServer } from "./door/turnqueue.js";
import { CODEX_ACP_BIN, CODEX_BIN, codexEnv, workDir } from "../test/support/agents.js";

/**
 * A model Codex knows, as a user's would be (for an unknown name Codex warns of missing
 * model metadata before every turn, and codex-acp sends that as agent text).
 */
const MODEL = "gpt-5.5";
/** Per side: the p50 of 20 moved by a few ms between runs on a quiet machine (Codex 13.1 and 7.4 ms added). */
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 40);
const BREAKDOWN = Boolean(process.env.BENCH_BREAKDOWN);
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

/**
 * One way to send a message to the agent: resolves once it is sent, with when the message
 * reached the code that writes it to the agent (the runtime's turn handler; the bench itself
 * when direct) and a promise of the turn's end.
 */
type Send = (text: string) => Promise<{ handed: Promise<number>; ended: () => Promise<unknown> }>;

interface Side {
  name: string;
  send: Send;
  close(): Promise<void>;
}

/**
 * One sample's marks on the bench's clock: sent, the message reached the handler, its turn
 * start was written to the agent's stdin, the model got it.
 */
interface Marks {
  text: string;
  t0: number;
  handed: number;
  written: number;
  at: number;
}

/**
 * When each message's `turn/start` (Codex) or `session/prompt` (ACP) was written to an agent's
 * stdin, by its text: read off the pipe's writes, so both sides (the adapters' own clients,
 * the bench's direct ones) are timed at the same point. A write is only parsed when it holds
 * one of those methods (a byte search), so the other writes of the process cost nothing more.
 */
const writtenAt = new Map<string, number>();
{
  const METHODS = ['"method":"turn/start"', '"method":"session/prompt"'];
  const write = net.Socket.prototype.write;
  net.Socket.prototype.write = function (this: net.Socket, chunk: unknown, ...rest: unknown[]) {
    const at = now();
    const bytes = typeof chunk === "string" ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : null;
    if (bytes && METHODS.some((m) => bytes.indexOf(m) >= 0)) {
      for (const line of bytes.toString().split("\n")) {
        if (!METHODS.some((m) => line.includes(m))) continue;
        const { params } = JSON.parse(line) as { params: { input?: { text?: string }[]; prompt?: { text?: string }[] } };
        const text = (params.input ?? params.prompt)?.[0]?.text;
        if (text) writtenAt.set(text, at);
      }
    }
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof write;
}

/** One sample, in ms: sending → the model receives the request, and the part before the agent got it. */
async function sample(model: Model, side: Side, i: number): Promise<{ total: number; before: number; marks: Marks }> {
  const text = `${side.name} sample ${i} ${Math.random()}`;
  const arrival = model.arrival(text);
  const t0 = now();
  const { handed, ended } = await side.send(text);
  const [at, handedAt] = await Promise.all([arrival, handed]);
  await ended();
  // Let what the turn's end set off (reports, the drain reactor's look) finish before the next sample.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const written = writtenAt.get(text)!;
  writtenAt.delete(text);
  return { total: at - t0, before: handedAt - t0, marks: { text, t0, handed: handedAt, written, at } };
}

/** Samples both sides in turns (alternating which goes first); the first sample of each is a warm-up. */
async function compare(model: Model, via: Side, direct: Side) {
  const samples = {
    via: [] as number[],
    direct: [] as number[],
    turnqueue: [] as number[],
    /** The agent's own part: its stdin write → the model's request. */
    viaAgent: [] as number[],
    directAgent: [] as number[],
    marks: [] as Marks[],
  };
  for (let i = 0; i <= SAMPLES; i++) {
    const order = i % 2 === 0 ? (["via", "direct"] as const) : (["direct", "via"] as const);
    for (const which of order) {
      const { total, before, marks } = await sample(model, which === "via" ? via : direct, i);
      if (process.env.BENCH_DEBUG) console.error(`${which === "via" ? via.name : direct.name} ${i} ${total.toFixed(1)} ms (${before.toFixed(1)} ms before the agent)`);
      if (i === 0) continue;
      samples[which].push(total);
      samples[which === "via" ? "viaAgent" : "directAgent"].push(marks.at - marks.written);
      if (which === "via") samples.turnqueue.push(before), samples.marks.push(marks);
    }
  }
  return samples;
}

/** `turnqueue serve` (embedded database) and an agent runtime with `adapter`, on one thread. */
async function viaTurnqueue(name: string, adapter: AgentAdapter): Promise<Side & { spans(): Promise<SpanLine[]> }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-bench-agents-"));
  const spansFile = path.join(dataDir, "spans.jsonl");
  const server = await startServer({
    dataDir,
    databaseUrl: null,
    ...(BREAKDOWN && { preload: path.join(import.meta.dirname, "spans-to-file.mjs"), env: { TURNQUEUE_BENCH_SPANS: spansFile } }),
  });
  const user = createTransport({ url: server.url, token: await server.token("user"), calls: "socket" });
  const handed = new Map<string, (at: number) => void>();
  const agent = runAgent({
    url: server.url,
    token: await server.token("agent"),
    ...adapter,
    onTurn: (turn) => {
      handed.get(turn.dispatch.message.text)?.(now());
      return adapter.onTurn(turn);
    },
  });
  const { threadId } = await user.thread.create.mutate({});
  let n = 0;
  return {
    name,
    async send(text) {
      const reached = new Promise<number>((resolve) => handed.set(text, resolve));
      await user.queue.add.mutate({ threadId, message: { messageId: `m${n++}`, text } });
      // The runtime reports the turn's end and is idle once the server has taken the report.
      return { handed: reached, ended: () => agent.idle() };
    },
    async spans() {
      // The server exports in batches every 100 ms: wait for the last one.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const text = await readFile(spansFile, "utf8").catch(() => "");
      return text.split("\n").filter(Boolean).map((line) => JSON.parse(line) as SpanLine);
    },
    async close() {
      await agent.close();
      await user.close();
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A span as bench/spans-to-file.mjs writes it (times in epoch ms). */
interface SpanLine {
  name: string;
  traceId: string;
  spanId: string;
  parentId: string | null;
  start: number;
  end: number;
}

/** The cut points of Turnqueue's part, in order, and what lies between each and the one before. */
const SEGMENTS = [
  ["received", "request in: the user's client → the server has queue.add"],
  ["appended", "queue.add: decide + append (the database), with the claim when it is in the same append"],
  ["claiming", "notify: the commit → the drain reactor claims (0 when the add claimed)"],
  ["claimed", "claim: decide + append (0 when the add claimed)"],
  ["dispatched", "claim committed → dispatch sent on the agent's stream"],
  ["handed", "dispatch transport: the stream → runAgent → the turn handler"],
  ["written", "adapter: the handler → turn/start (session/prompt) written to the agent"],
] as const;
type Cut = (typeof SEGMENTS)[number][0];

/** Each sample's cut points, from its trace (the `queue.add` the sample sent) and this process's marks. */
function cutsOf(marks: Marks, spans: SpanLine[]): Record<Cut, number> | null {
  const root = spans.find((s) => (s.name === "trpc queue.add" || s.name === "command queue.add") && s.start >= marks.t0 && s.start <= marks.handed);
  if (!root) return null;
  const trace = spans.filter((s) => s.traceId === root.traceId);
  const one = (name: string, under?: SpanLine) => trace.find((s) => s.name === name && (!under || s.parentId === under.spanId));
  const add = one("command queue.add");
  // The add claims in its own append when the thread is idle; the drain reactor's claim otherwise.
  const claim = one("command drain.claim");
  const dispatch = one("dispatch");
  const added = add && one("append", add);
  const claimAppended = claim ? one("append", claim) : added;
  if (!add || !dispatch || !added || !claimAppended) return null;
  return {
    received: root.start,
    appended: added.end,
    claiming: claim?.start ?? added.end,
    claimed: claimAppended.end,
    dispatched: dispatch.start,
    handed: marks.handed,
    written: marks.written,
  };
}

/** Prints the p50 of each segment of Turnqueue's part and its share of their sum. */
function printBreakdown(all: Marks[], spans: SpanLine[]) {
  const cuts = all.flatMap((m) => {
    const c = cutsOf(m, spans);
    return c ? [{ t0: m.t0, ...c }] : [];
  });
  if (cuts.length === 0) return console.log("  (no sample's trace was complete: is the build current? `npm run build`)");
  const rows = SEGMENTS.map(([cut, label], i) => {
    const from = i === 0 ? "t0" : SEGMENTS[i - 1]![0];
    return { label, p50: percentile(cuts.map((c) => c[cut] - c[from as Cut | "t0"]), 50) };
  });
  const sum = rows.reduce((a, r) => a + r.p50, 0);
  console.log(`  where queue.add → turn/start goes (${cuts.length} traced samples; p50 of each segment, share of their sum ${sum.toFixed(1)} ms):`);
  for (const r of rows) console.log(`    ${(((r.p50 / sum) * 100).toFixed(0) + "%").padStart(4)}  ${r.p50.toFixed(2).padStart(7)} ms  ${r.label}`);
}

/** The thread settings the Codex adapter uses with `--approve deny` (see client/agents/codex.ts). */
const codexThread = (cwd: string): ThreadStartParams => ({ cwd, approvalPolicy: "on-request", sandbox: "read-only" });

async function codexDirect(modelUrl: string, cwd: string): Promise<Side> {
  const child = spawn(CODEX_BIN, ["app-server"], { cwd, env: codexEnv(modelUrl, MODEL), stdio: ["pipe", "pipe", "ignore"] });
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
      const handed = Promise.resolve(now());
      const { turn } = await rpc.request<{ turn: { id: string } }>("turn/start", {
        threadId: thread.id,
        clientUserMessageId: `d${n++}`,
        input: [{ type: "text", text, text_elements: [] }],
      });
      return { handed, ended: () => turnCompleted(turn.id) };
    },
    async close() {
      child.kill("SIGTERM");
    },
  };
}

async function acpDirect(modelUrl: string, cwd: string): Promise<Side> {
  // Its own process group: the npm wrapper runs the native agent as its child, and both must end.
  const child = spawn(CODEX_ACP_BIN, [], { env: codexEnv(modelUrl, MODEL), stdio: ["pipe", "pipe", "ignore"], detached: true });
  const connection = acp
    .client({ name: "bench" })
    .onRequest(acp.methods.client.session.requestPermission, () => ({ outcome: { outcome: "cancelled" } }))
    .connect(acp.ndJsonStream(Writable.toWeb(child.stdin), Readable.toWeb(child.stdout) as ReadableStream<Uint8Array>));
  await connection.agent.request(acp.methods.agent.initialize, { protocolVersion: acp.PROTOCOL_VERSION, clientCapabilities: {} });
  const { sessionId } = await connection.agent.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
  return {
    name: "acp direct",
    async send(text) {
      const handed = Promise.resolve(now());
      const prompt = connection.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: "text", text }] });
      return { handed, ended: () => prompt };
    },
    async close() {
      connection.close();
      process.kill(-child.pid!, "SIGTERM");
    },
  };
}

const model = await startModel();
try {
  const rows: { name: string; samples: Awaited<ReturnType<typeof compare>>; spans: SpanLine[] }[] = [];
  const agents = [
    { name: "Codex (codex app-server)", side: "codex", adapter: (cwd: string) => codexAdapter({ cwd, approve: "deny", command: CODEX_BIN, env: codexEnv(model.url, MODEL) }), direct: codexDirect },
    { name: "ACP (codex-acp)", side: "acp", adapter: (cwd: string) => acpAdapter({ command: CODEX_ACP_BIN, cwd, approve: "deny", env: codexEnv(model.url, MODEL) }), direct: acpDirect },
  ];
  for (const agent of agents) {
    const cwd = workDir();
    const via = await viaTurnqueue(`${agent.side} via turnqueue`, agent.adapter(cwd));
    const direct = await agent.direct(model.url, cwd);
    const samples = await compare(model, via, direct);
    rows.push({ name: agent.name, samples, spans: BREAKDOWN ? await via.spans() : [] });
    await Promise.all([via.close(), direct.close()]);
  }

  // Printed, and written to bench/results/agents.md so the figures sit beside the door table.
  const lines: string[] = [];
  const print = (line: string) => (console.log(line), lines.push(line));
  print(`queue.add on an idle thread → the model receives the agent's request (${SAMPLES} samples each, interleaved, warm agents)`);
  const f = (ms: number) => `${ms.toFixed(1)} ms`;
  for (const { name, samples, spans } of rows) {
    const { via, direct, turnqueue, viaAgent, directAgent } = samples;
    const [v50, v99, d50, d99] = [percentile(via, 50), percentile(via, 99), percentile(direct, 50), percentile(direct, 99)];
    print(
      `${name.padEnd(26)} via Turnqueue p50 ${f(v50)} p99 ${f(v99)} | direct p50 ${f(d50)} p99 ${f(d99)} | ratio p50 ${(v50 / d50).toFixed(2)}x, added ${f(v50 - d50)}`,
    );
    print(
      `${"".padEnd(26)} of which queue.add → the runtime's turn handler p50 ${f(percentile(turnqueue, 50))} p99 ${f(percentile(turnqueue, 99))}; the agent's own part (its stdin write → the model) p50 ${f(percentile(viaAgent, 50))} via Turnqueue, ${f(percentile(directAgent, 50))} direct`,
    );
    if (BREAKDOWN) printBreakdown(samples.marks, spans);
  }
  const heading = `# npm run bench:agents\n\n${new Date().toISOString()}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")} at the end\n`;
  await writeFile(path.join(import.meta.dirname, "results", "agents.md"), `${heading}\n\`\`\`\n${lines.join("\n")}\n\`\`\`\n`);
} finally {
  model.close();
}
process.exit(0);
