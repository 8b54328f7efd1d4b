/**
 * Enqueue throughput and latency through the engine (queue.add → decide → append with
 * projections → publish), at 1, 16 and 64 concurrent clients, on clients' own threads and
 * all on one thread, beside the raw driver's single-row insert rate at the same
 * concurrency on the same database in the same run. The target is at least half the raw
 * rate at 64 clients.
 *
 *   npm run bench:core                  PGlite, plus PostgreSQL when TEST_DATABASE_URL or DATABASE_URL is set
 *   BENCH_SECONDS=3 npm run bench:core  seconds per measurement (default 2)
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import pino from "pino";
import { InProcessBus } from "../src/cluster/bus.js";
import { Command, defaultDrainPolicy } from "../src/domain/index.js";
import { createEngine } from "../src/engine/index.js";
import { openDatabase, type Database } from "../src/store/database.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const CONCURRENCY = [1, 16, 64];

interface Figures {
  perSecond: number;
  p50: number;
  p99: number;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;

/** `clients` loops each running `op` back to back for SECONDS; throughput and latency of all ops. */
async function measure(clients: number, op: (client: number, i: number) => Promise<unknown>): Promise<Figures> {
  const latencies: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = 0; performance.now() < end; i++) {
        const t0 = performance.now();
        await op(client, i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { perSecond: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

const fmt = (f: Figures) => `${f.perSecond.toFixed(0).padStart(6)}/s  p50 ${f.p50.toFixed(1).padStart(6)} ms  p99 ${f.p99.toFixed(1).padStart(7)} ms`;

async function bench(label: string, db: Database): Promise<void> {
  console.log(`\n${label}`);
  await db.sql.exec(`create table if not exists bench_raw (id bigserial primary key, k text not null, payload jsonb not null)`);
  const engine = createEngine({
    store: db.store,
    bus: new InProcessBus(),
    now: () => new Date(),
    policy: defaultDrainPolicy,
    logger: pino({ level: "silent" }),
  });
  const run = randomBytes(3).toString("hex");
  const text = "Please refactor the retry loop in the uploader and add a test for the timeout path.";
  const add = (threadId: string, id: string) =>
    engine.execute(
      threadId,
      Command.parse({ type: "queue.add", queueItemId: `${run}-${id}`, message: { messageId: `${run}-${id}`, text }, options: { model: "m" } }),
      { actor: "bench" },
    );
  const createThread = (threadId: string) =>
    engine.execute(threadId, Command.parse({ type: "thread.create", workspaceId: "bench" }), { actor: "bench" });

  const rows: string[] = [];
  for (const clients of CONCURRENCY) {
    const raw = await measure(clients, (c, i) =>
      db.sql.query(`insert into bench_raw (k, payload) values ($1, $2::jsonb)`, [`${c}-${i}`, JSON.stringify({ text, c, i })]),
    );
    const scenario = `${clients}c`;
    const own = Array.from({ length: clients }, (_, c) => `${run}-${scenario}-own-${c}`);
    for (const threadId of own) await createThread(threadId);
    const distinct = await measure(clients, (c, i) => add(own[c]!, `${scenario}-own-${c}-${i}`));
    const shared = `${run}-${scenario}-shared`;
    await createThread(shared);
    const oneThread = await measure(clients, (c, i) => add(shared, `${scenario}-shared-${c}-${i}`));
    const ratio = (f: Figures) => (f.perSecond / raw.perSecond).toFixed(2);
    rows.push(
      `  ${String(clients).padStart(2)} clients  raw insert        ${fmt(raw)}`,
      `             queue.add, own threads  ${fmt(distinct)}  ratio ${ratio(distinct)}`,
      `             queue.add, one thread   ${fmt(oneThread)}  ratio ${ratio(oneThread)}`,
    );
    console.log(rows.slice(-3).join("\n"));
  }
  await engine.close();
}

const pgUrl = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? null;
console.log(`bench:core — ${SECONDS}s per measurement; ratio = queue.add throughput / raw single-row insert throughput at the same concurrency (aim ≥ 0.50 at 64 clients)`);

const dir = await mkdtemp(path.join(os.tmpdir(), "tq-bench-"));
const lite = await openDatabase({ databaseUrl: null, dataDir: dir });
try {
  await bench("PGlite (on disk, one connection)", lite);
} finally {
  await lite.close();
  await rm(dir, { recursive: true, force: true });
}

if (!pgUrl) {
  console.log("\nPostgreSQL: SKIPPED (set TEST_DATABASE_URL or DATABASE_URL to measure it)");
} else {
  // A scratch database on that server, so the bench never touches real data.
  const name = `tq_bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: pgUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(pgUrl);
  url.pathname = `/${name}`;
  const db = await openDatabase({ databaseUrl: url.toString(), dataDir: dir });
  try {
    await bench(`PostgreSQL (${url.host}, pool of 10)`, db);
  } finally {
    await db.close();
    await admin.query(`drop database ${name} with (force)`);
    await admin.end();
  }
}
