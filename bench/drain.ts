/**
 * npm run bench:drain — how fast a ready session gets its turn.
 *
 * For 100 threads, each with one queued item and no session: the time from calling
 * `agent.session(ready)` to the dispatch arriving in the agent SDK's handler (mutation,
 * reactor, claim append, bus, dispatch stream, WebSocket), p50 / p99. Beside it, in the same
 * run and process, the bus's own publish → subscriber latency, and the ratio of the two.
 *
 * Embedded PGlite and the in-process bus by default; DATABASE_URL / REDIS_URL (as for
 * `turnqueue serve`) measure PostgreSQL and the Redis bus instead.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { runAgent } from "../client/agent.js";
import { createTransport } from "../client/transport.js";
import { loadConfig } from "../src/config.js";
import { startTurnqueue } from "../src/server.js";

const THREADS = 100;
const BUS_SAMPLES = 1_000;

const percentile = (samples: number[], p: number) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};
const ms = (x: number) => (x < 1 ? `${(x * 1000).toFixed(1)} µs` : `${x.toFixed(1)} ms`);

const dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-bench-drain-"));
const config = await loadConfig({ env: process.env, flags: { dataDir, port: "0", logLevel: "warn" } });
const app = await startTurnqueue(config);
try {
  const workspaceId = `bench-${randomUUID()}`;
  const token = (role: "user" | "agent") => app.services.auth.issue({ sub: `bench-${role}`, workspaceId, role });
  const user = createTransport({ url: app.url, token: await token("user") });

  const threadIds: string[] = [];
  for (let i = 0; i < THREADS; i++) {
    const { threadId } = await user.thread.create.mutate({ title: `bench ${i}` });
    await user.queue.add.mutate({ threadId, message: { messageId: `m${i}`, text: `turn ${i}` } });
    threadIds.push(threadId);
  }

  const arrived = new Map<string, (at: number) => void>();
  const agent = runAgent({
    url: app.url,
    token: await token("agent"),
    async onTurn(turn) {
      arrived.get(turn.dispatch.threadId)?.(performance.now());
      await turn.start();
      return { outcome: "completed" };
    },
  });
  // Warm the WebSocket and the dispatch stream before measuring.
  const { threadId: warm } = await user.thread.create.mutate({});
  const warmed = new Promise<number>((resolve) => arrived.set(warm, resolve));
  await user.queue.add.mutate({ threadId: warm, message: { messageId: "warm", text: "warm" } });
  await agent.session(warm, "ready");
  await warmed;

  const drain: number[] = [];
  /** The part of it that is the `agent.session` mutation's own round trip. */
  const acked: number[] = [];
  for (const threadId of threadIds) {
    const arrival = new Promise<number>((resolve) => arrived.set(threadId, resolve));
    const start = performance.now();
    await agent.session(threadId, "ready");
    acked.push(performance.now() - start);
    drain.push((await arrival) - start);
  }
  await agent.idle();
  await agent.close();
  await user.close();

  // The bus alone, in the same process and run: publish → subscriber.
  const { bus } = app.services;
  const channel = `bench:${randomUUID()}`;
  const busLatency: number[] = [];
  let delivered: ((at: number) => void) | null = null;
  const unsubscribe = await bus.subscribe(channel, () => delivered?.(performance.now()));
  const payload = new TextEncoder().encode(JSON.stringify([{ type: "bench", threadId: "x" }]));
  for (let i = 0; i < BUS_SAMPLES; i++) {
    const got = new Promise<number>((resolve) => (delivered = resolve));
    const start = performance.now();
    await bus.publish(channel, payload);
    busLatency.push((await got) - start);
  }
  await unsubscribe();

  const store = config.databaseUrl ? "PostgreSQL" : "PGlite";
  const busKind = config.redisUrl ? "Redis bus" : "in-process bus";
  const [d50, d99, b50, b99] = [percentile(drain, 50), percentile(drain, 99), percentile(busLatency, 50), percentile(busLatency, 99)];
  console.log(`bench:drain — ${store}, ${busKind}, ${THREADS} threads`);
  console.log(`  session(ready) → dispatch at the agent:  p50 ${ms(d50)}   p99 ${ms(d99)}`);
  console.log(`    of which the session mutation's round trip: p50 ${ms(percentile(acked, 50))}   p99 ${ms(percentile(acked, 99))}`);
  console.log(`  bus publish → subscriber (${BUS_SAMPLES} msgs):  p50 ${ms(b50)}   p99 ${ms(b99)}`);
  console.log(`  ratio drain / bus:                        p50 ${(d50 / b50).toFixed(0)}×   p99 ${(d99 / b99).toFixed(0)}×`);
} finally {
  await app.close();
  await rm(dataDir, { recursive: true, force: true });
}
