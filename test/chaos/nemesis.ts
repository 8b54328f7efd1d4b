import type { Recorder } from "./history.js";
import type { PrivateRedis } from "../support/private-redis.js";
import type { AgentProcess, BlackholeProxy, Instance, PrivatePostgres } from "./infra.js";
import type { Random } from "./random.js";

/** The dispatch timeout of a run: every "longer than any lease or timeout" pause outlasts it. */
export const DISPATCH_TIMEOUT_MS = 4_000;

/** What a nemesis may hurt in one run. */
export interface Targets {
  instances: Instance[];
  agent: AgentProcess;
  /** The instance the agent runtime is connected to. */
  agentInstance: Instance;
  redis: PrivateRedis | null;
  redisProxy: BlackholeProxy | null;
  postgres: PrivatePostgres | null;
  pgProxy: BlackholeProxy | null;
  recorder: Recorder;
  random: Random;
}

/** A fault: `strike` injects it and heals it again (each strike is whole); `heal` makes sure nothing is left broken. */
export interface Nemesis {
  strike(t: Targets): Promise<void>;
  heal(t: Targets): Promise<void>;
  /** Runs one instance on the embedded PGlite instead of three on PostgreSQL + Redis. */
  embedded?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const killInstance: Nemesis["strike"] = async (t) => {
  const victim = t.random.pick(t.instances);
  t.recorder.strike(`SIGKILL ${victim.name}`);
  await victim.kill();
  await sleep(t.random.between(200, 1_500));
  await victim.start();
  t.recorder.strike(`${victim.name} restarted`);
};

/** Longer than the dispatch timeout and every lease: whatever the paused instance held is someone else's when it wakes. */
const pauseInstance: Nemesis["strike"] = async (t) => {
  const victim = t.random.next() < 0.6 ? t.agentInstance : t.random.pick(t.instances);
  t.recorder.strike(`SIGSTOP ${victim.name}`);
  victim.pause();
  await sleep(DISPATCH_TIMEOUT_MS + t.random.between(1_500, 3_000));
  victim.resume();
  t.recorder.strike(`SIGCONT ${victim.name}`);
};

const blackhole = (which: "pgProxy" | "redisProxy"): Nemesis["strike"] => async (t) => {
  const proxy = t[which];
  if (!proxy) return;
  const name = which === "pgProxy" ? "PostgreSQL" : "Redis";
  t.recorder.strike(`black-hole ${name}`);
  proxy.blackhole();
  await sleep(t.random.between(1_500, 4_000));
  proxy.release();
  t.recorder.strike(`${name} link released`);
};

const restartPostgres: Nemesis["strike"] = async (t) => {
  if (!t.postgres) return;
  t.recorder.strike("PostgreSQL stopped (immediate)");
  await t.postgres.restart(t.random.between(500, 2_000));
  t.recorder.strike("PostgreSQL started");
};

const restartRedis: Nemesis["strike"] = async (t) => {
  if (!t.redis) return;
  t.recorder.strike("SIGKILL Redis");
  await t.redis.kill();
  await sleep(t.random.between(2_000, 6_000));
  await t.redis.start();
  t.recorder.strike("Redis started");
};

const killAgent: Nemesis["strike"] = async (t) => {
  t.recorder.strike("SIGKILL agent runtime");
  await t.agent.kill();
  await sleep(t.random.between(200, 1_500));
  t.agent.start();
  t.recorder.strike("agent runtime started");
};

async function healAll(t: Targets): Promise<void> {
  t.pgProxy?.release();
  t.redisProxy?.release();
  for (const i of t.instances) {
    if (i.stopped) i.resume();
    if (!i.alive) await i.start();
  }
}

const single = (strike: Nemesis["strike"], extra: Partial<Nemesis> = {}): Nemesis => ({ strike, heal: healAll, ...extra });

/** SIGKILL an instance, then kill and restart Redis, in turn: the two faults `npm test` always runs. */
function alternating(...strikes: Nemesis["strike"][]): Nemesis["strike"] {
  let next = 0;
  return (t) => strikes[next++ % strikes.length]!(t);
}

const MIXED = [killInstance, pauseInstance, blackhole("pgProxy"), blackhole("redisProxy"), restartPostgres, restartRedis, killAgent];

export const NEMESES = {
  none: single(async () => {}),
  "kill-instance": single(killInstance),
  "kill-pglite": single(killInstance, { embedded: true }),
  "pause-instance": single(pauseInstance),
  "blackhole-postgres": single(blackhole("pgProxy")),
  "blackhole-redis": single(blackhole("redisProxy")),
  "restart-postgres": single(restartPostgres),
  "restart-redis": single(restartRedis),
  "kill-agent": single(killAgent),
  mixed: single((t) => t.random.pick(MIXED)(t)),
  "kill-and-restart-redis": single(alternating(killInstance, restartRedis)),
} satisfies Record<string, Nemesis>;
