import { Logger, makeWorkerUtils, run } from "graphile-worker";
import pg from "pg";
import { PgBoss } from "pg-boss";
import { latency, loadFor, type Latency } from "./stats.js";

/**
 * The job queues people use instead, on the same PostgreSQL database as Turnqueue in the
 * same run, driven the way their documentation says, from this (the client) process.
 */

const quiet = new Logger(() => () => {});

/** graphile-worker: `addJob` → the task function's entry, one job at a time, worker listening. */
export async function graphileDispatch(connectionString: string, samples: number): Promise<Latency> {
  // One pool of ours, with an error handler and ended below: the scratch database is dropped
  // with (force) after the run, and a pool graphile made itself could still hold an idle
  // connection then, whose termination had no listener and ended the bench process.
  const pool = new pg.Pool({ connectionString, max: 10 });
  pool.on("error", () => {});
  const utils = await makeWorkerUtils({ pgPool: pool, logger: quiet });
  await utils.migrate();
  let entered: ((at: number) => void) | null = null;
  const runner = await run({
    pgPool: pool,
    concurrency: 1,
    noHandleSignals: true,
    pollInterval: 2_000,
    logger: quiet,
    taskList: { bench: async () => entered?.(performance.now()) },
  });
  const out: number[] = [];
  try {
    for (let i = 0; i <= samples; i++) {
      const arrived = new Promise<number>((resolve) => (entered = resolve));
      const start = performance.now();
      await utils.addJob("bench", { i });
      const at = await arrived;
      if (i > 0) out.push(at - start); // the first warms up
      await new Promise((r) => setTimeout(r, 5)); // the job's completion lands before the next
    }
  } finally {
    await runner.stop();
    await utils.release();
    await pool.end();
  }
  return latency(out);
}

/** graphile-worker `addJob` throughput and latency from `clients` concurrent callers (no worker running). */
export async function graphileEnqueue(connectionString: string, clients: number, seconds: number) {
  const pool = new pg.Pool({ connectionString, max: 10 });
  pool.on("error", () => {});
  const utils = await makeWorkerUtils({ pgPool: pool, logger: quiet });
  try {
    return await loadFor(seconds, clients, (c, i) => utils.addJob("bench_enqueue", { c, i, text: TEXT }));
  } finally {
    await utils.release();
    await pool.end();
  }
}

async function startBoss(connectionString: string): Promise<PgBoss> {
  const boss = new PgBoss({ connectionString, max: 10, schedule: false, supervise: false } as ConstructorParameters<typeof PgBoss>[0]);
  boss.on("error", () => {});
  await boss.start();
  return boss;
}

/**
 * pg-boss, `key_strict_fifo` queue (one job at a time per key, in order): `complete(A)` →
 * B fetched, for a key holding A active and B queued.
 */
export async function pgBossHandoff(connectionString: string, samples: number): Promise<Latency> {
  const boss = await startBoss(connectionString);
  const name = `handoff_${Date.now()}`;
  await boss.createQueue(name, { policy: "key_strict_fifo" });
  const out: number[] = [];
  try {
    for (let i = 0; i <= samples + 1; i++) await boss.send(name, { i }, { singletonKey: "thread" });
    let [active] = await boss.fetch(name);
    for (let i = 0; i <= samples && active; i++) {
      const start = performance.now();
      await boss.complete(name, active.id);
      const [next] = await boss.fetch(name);
      if (i > 0) out.push(performance.now() - start);
      active = next;
    }
  } finally {
    await boss.stop({ graceful: false, wait: true } as never);
  }
  return latency(out);
}

/** pg-boss `send` throughput and latency from `clients` concurrent callers. */
export async function pgBossEnqueue(connectionString: string, clients: number, seconds: number) {
  const boss = await startBoss(connectionString);
  const name = `enqueue_${Date.now()}`;
  await boss.createQueue(name);
  try {
    return await loadFor(seconds, clients, (c, i) => boss.send(name, { c, i, text: TEXT }));
  } finally {
    await boss.stop({ graceful: false, wait: true } as never);
  }
}

/** The floor: the driver's single-row insert, pool of 10 like the others. */
export async function rawInsert(connectionString: string, clients: number, seconds: number) {
  const pool = new pg.Pool({ connectionString, max: 10 });
  await pool.query(`create table if not exists bench_raw (id bigserial primary key, k text not null, payload jsonb not null)`);
  try {
    return await loadFor(seconds, clients, (c, i) =>
      pool.query(`insert into bench_raw (k, payload) values ($1, $2::jsonb)`, [`${c}-${i}`, JSON.stringify({ text: TEXT, c, i })]),
    );
  } finally {
    await pool.end();
  }
}

export const TEXT = "Please refactor the retry loop in the uploader and add a test for the timeout path.";
