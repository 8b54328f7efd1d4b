import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { runAgent, type Turn } from "../../client/agent.js";
import { createTransport, type Transport } from "../../client/transport.js";
import { createAuth } from "../../src/auth/tokens.js";
import { spawnServer, type ServerProcess } from "./process.js";
import { TEXT } from "./peers.js";
import { latency, loadFor, type Latency } from "./stats.js";

const bin = fileURLToPath(new URL("../../bin/turnqueue.mjs", import.meta.url));

export interface TurnqueueServer extends ServerProcess {
  token(role: "user" | "agent", workspaceId?: string, sub?: string): Promise<string>;
}

/** `turnqueue serve` (the compiled server), on PGlite under `dataDir` or on `databaseUrl`. */
export async function startServer(options: {
  dataDir: string;
  databaseUrl: string | null;
  cpuProfDir?: string | null;
  docIdleMs?: number;
  /** A module node loads before the server (`--import`), e.g. an OpenTelemetry setup. */
  preload?: string;
  env?: Record<string, string>;
}): Promise<TurnqueueServer> {
  const secret = randomBytes(24).toString("hex");
  const server = await spawnServer({
    label: "turnqueue",
    args: [...(options.preload ? ["--import", options.preload] : []), bin, "serve", "--port", "0", "--data-dir", options.dataDir, "--log-level", "warn"],
    env: {
      ...options.env,
      TURNQUEUE_SECRET: secret,
      DATABASE_URL: options.databaseUrl ?? undefined,
      REDIS_URL: undefined,
      // The enqueue and long-thread benches fill one thread far past the default bound.
      TURNQUEUE_MAX_QUEUE_ITEMS: "1000000",
      ...(options.docIdleMs !== undefined && { TURNQUEUE_DOC_IDLE_MS: String(options.docIdleMs) }),
    },
    ready: /Turnqueue is serving (\S+)/,
    cpuProfDir: options.cpuProfDir,
  });
  const auth = createAuth(secret);
  return { ...server, token: (role, workspaceId = "bench", sub = `bench-${role}`) => auth.issue({ sub, workspaceId, role }) };
}

let unique = 0;
const id = (what: string) => `${what}-${Date.now().toString(36)}-${(unique++).toString(36)}`;

/** An agent runtime whose handler is told each turn's entry, and ends the turn when told. */
function recordingAgent(url: string, token: string, onEntry: (turn: Turn, at: number) => void | Promise<void>) {
  return runAgent({
    url,
    token,
    async onTurn(turn) {
      await onEntry(turn, performance.now());
      return { outcome: "completed" };
    },
  });
}

/** `queue.add` on an idle thread (session ready, nothing running) → the agent handler's entry. */
export async function dispatchLatency(server: TurnqueueServer, samples: number): Promise<Latency> {
  const user = createTransport({ url: server.url, token: await server.token("user"), calls: "socket" });
  const entries = new Map<string, (at: number) => void>();
  const agent = recordingAgent(server.url, await server.token("agent"), (turn, at) => entries.get(turn.dispatch.message?.messageId ?? "")?.(at));
  const { threadId } = await user.thread.create.mutate({ title: "dispatch" });
  await agent.session(threadId, "ready");
  const out: number[] = [];
  try {
    for (let i = 0; i <= samples; i++) {
      const messageId = id("m");
      const entered = new Promise<number>((resolve) => entries.set(messageId, resolve));
      const start = performance.now();
      await user.queue.add.mutate({ threadId, message: { messageId, text: TEXT } });
      const at = await entered;
      if (i > 0) out.push(at - start); // the first warms up
      await agent.idle();
    }
  } finally {
    await agent.close();
    user.close();
  }
  return latency(out);
}

/** One thread with `samples + 1` items queued: the end of one turn → the next turn's handler entry. */
export async function handoffLatency(server: TurnqueueServer, samples: number): Promise<Latency> {
  const user = createTransport({ url: server.url, token: await server.token("user"), calls: "socket" });
  const { threadId } = await user.thread.create.mutate({ title: "handoff" });
  for (let i = 0; i <= samples + 1; i++) await user.queue.add.mutate({ threadId, message: { messageId: `m${i}`, text: TEXT } });
  const gaps: number[] = [];
  let endedAt: number | null = null;
  let count = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const agent = runAgent({
    url: server.url,
    token: await server.token("agent"),
    async onTurn() {
      const at = performance.now();
      if (endedAt !== null && count > 1) gaps.push(at - endedAt);
      if (++count > samples + 1) done();
      endedAt = performance.now();
      return { outcome: "completed" };
    },
  });
  await agent.session(threadId, "ready");
  await finished;
  await agent.idle();
  await agent.close();
  user.close();
  return latency(gaps);
}

/** `queue.add` from `clients` concurrent SDK clients (each its own socket), on their own threads or all on one. */
export async function enqueueThroughput(server: TurnqueueServer, clients: number, seconds: number, oneThread: boolean) {
  // A token each, as separate users have: one token holds at most 50 connections (sockets) per instance.
  const tokens = await Promise.all(Array.from({ length: clients }, (_, c) => server.token("user", "bench", `bench-user-${c}`)));
  const users: Transport[] = tokens.map((token) => createTransport({ url: server.url, token, calls: "socket" }));
  const threads = oneThread
    ? Array(clients).fill((await users[0]!.thread.create.mutate({ title: "shared" })).threadId)
    : await Promise.all(users.map(async (u) => (await u.thread.create.mutate({ title: "own" })).threadId));
  const prefix = id("e");
  try {
    return await loadFor(seconds, clients, (c, i) =>
      users[c]!.queue.add.mutate({ threadId: threads[c]!, message: { messageId: `${prefix}-${c}-${i}`, text: TEXT } }),
    );
  } finally {
    for (const u of users) u.close();
  }
}

export interface LongThread {
  items: number;
  first: Latency;
  last: Latency;
  /** Dispatches per second for the first `drained` items of the long thread, and of a thread holding only those. */
  drainLong: number;
  drainShort: number;
  drained: number;
}

/** `items` added one after another to one thread: latency of the first and the last tenth; then drain speed at that length. */
export async function longThread(server: TurnqueueServer, items: number, drained: number): Promise<LongThread> {
  const user = createTransport({ url: server.url, token: await server.token("user"), calls: "socket" });
  const tenth = Math.max(1, Math.floor(items / 10));
  const fill = async (threadId: string, n: number, record: boolean) => {
    const lat: number[] = [];
    for (let i = 0; i < n; i++) {
      const start = performance.now();
      await user.queue.add.mutate({ threadId, message: { messageId: `m${i}`, text: TEXT } });
      if (record) lat.push(performance.now() - start);
    }
    return lat;
  };
  const { threadId: long } = await user.thread.create.mutate({ title: "long" });
  const lat = await fill(long, items, true);
  const { threadId: short } = await user.thread.create.mutate({ title: "short" });
  await fill(short, drained, false);

  const drainRate = async (threadId: string) => {
    let n = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const agent = runAgent({
      url: server.url,
      token: await server.token("agent"),
      async onTurn() {
        if (++n === drained) done();
        return { outcome: "completed" };
      },
    });
    const start = performance.now();
    await agent.session(threadId, "ready");
    await finished;
    const perSecond = drained / ((performance.now() - start) / 1000);
    await agent.session(threadId, "stopped");
    await agent.idle();
    await agent.close();
    return perSecond;
  };
  const drainLong = await drainRate(long);
  const drainShort = await drainRate(short);
  user.close();
  return { items, first: latency(lat.slice(0, tenth)), last: latency(lat.slice(-tenth)), drainLong, drainShort, drained };
}

/** Threads with one queued item each, for the document benches: the ids are the rooms. */
export async function threadsWithAnItem(server: TurnqueueServer, count: number): Promise<string[]> {
  const user = createTransport({ url: server.url, token: await server.token("user"), calls: "socket" });
  const ids: string[] = [];
  for (let i = 0; i < count; i += 50) {
    ids.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(50, count - i) }, async (_, j) => {
          const { threadId } = await user.thread.create.mutate({ title: `doc ${i + j}` });
          await user.queue.add.mutate({ threadId, message: { messageId: "m", text: "queued while the agent works" } });
          return threadId;
        }),
      )),
    );
  }
  user.close();
  return ids;
}
