import { context } from "@opentelemetry/api";
import { DomainError, drainCommandDue, drainWakeAt, type Command } from "../domain/index.js";
import type { Logger } from "pino";
import type { Lease } from "../cluster/lease.js";
import type { Config } from "../config.js";
import type { Engine, ExecuteResult } from "../engine/types.js";
import type { Closable } from "../lifecycle.js";
import { StoreUnavailableError, type EventStore } from "../store/types.js";
import { afterCommit } from "../tracing.js";
import { SerialPerKey } from "./serial.js";
import { KeyedTimers } from "./timers.js";

const ACTOR = "reactor:drain";
/** How soon a thread is looked at again after the database failed us. */
const RETRY_AFTER_ERROR_MS = 1_000;
/** Threads reconciled at once by the startup scan and the sweep: keeps the store's pool for users. */
const SCAN_CONCURRENCY = 8;

/**
 * The drain reactor: makes every thread that is eligible claim its head item, times out
 * dispatches the agent never started, and wakes threads whose head waits for a retry.
 *
 * It only issues commands (`drain.claim`, `drain.timeout`); the decider owns every rule and
 * the claim's optimistic append is what guarantees one winner, so N instances reacting to
 * the same event are safe. The lease only keeps them from doing timer and sweep work N times.
 *
 * Triggers: every committed command on the engine's feed (whatever changed, the thread is looked at
 * again), the startup scan (subscribed first, so nothing committed meanwhile is missed),
 * per-thread timers, and a slow periodic sweep for whatever the bus lost.
 */
export interface DrainReactor extends Closable {
  /** Settles once the startup scan has looked at every thread with work. */
  readonly recovered: Promise<void>;
}

/** What the drain reactor uses. */
export interface DrainDeps {
  engine: Pick<Engine, "load" | "execute" | "feed">;
  store: Pick<EventStore, "threadsWithWork">;
  lease: Lease;
  logger: Logger;
  /** The only clock the reactor reads. */
  now: () => Date;
  config: Pick<Config, "drainPolicy" | "sweepIntervalMs">;
}

export async function startDrainReactor(deps: DrainDeps): Promise<DrainReactor> {
  const { engine, store, lease, config, logger } = deps;
  const log = logger.child({ component: "drain" });
  const bootedAt = deps.now().getTime();
  let closed = false;

  const reconcile = async (threadId: string): Promise<void> => {
    if (closed) return;
    try {
      await settle(threadId);
    } catch (error) {
      if (closed) return;
      if (!(error instanceof StoreUnavailableError)) log.error({ err: error, threadId }, "drain reconcile failed");
      else log.warn({ threadId, err: error.message }, "store unavailable; will look again");
      timers.at(threadId, new Date(deps.now().getTime() + RETRY_AFTER_ERROR_MS));
    }
  };
  const serial = new SerialPerKey(reconcile);
  /**
   * threadId → the newest version the feed announced that no look at the thread has taken
   * yet. A look that knows it starts from the engine's cached state when that is as new,
   * instead of reading the log: a claim follows a commit without a round trip to the database.
   */
  const announced = new Map<string, number>();
  const timers = new KeyedTimers(deps.now, (threadId) => {
    lease
      .tryWith(`drain:thread:${threadId}`, () => serial.request(threadId))
      .catch((error) => log.warn({ err: error, threadId }, "drain timer lease failed; the sweep will look again"));
  });

  /** Brings one thread to rest: issue what is due now, then arm a timer for what is due later. */
  async function settle(threadId: string): Promise<void> {
    const seen = announced.get(threadId);
    announced.delete(threadId);
    let state = await engine.load(threadId, seen);
    let command = drainCommandDue(state, deps.now(), config.drainPolicy, bootedAt);
    while (command !== null && !closed) {
      const result = await issue(threadId, command);
      if (result === null) return timers.cancel(threadId);
      state = result.state;
      // Nothing appended means the decider saw a newer state (another instance won, a
      // command landed meanwhile): that commit's own event brings us back.
      command = result.events.length > 0 ? drainCommandDue(state, deps.now(), config.drainPolicy, bootedAt) : null;
    }
    const wake = drainWakeAt(state, deps.now(), config.drainPolicy, bootedAt);
    if (wake) timers.at(threadId, wake);
    else timers.cancel(threadId);
  }

  /** Null when the decider refused: the thread is gone, nothing is left to drain. */
  async function issue(threadId: string, command: Command): Promise<ExecuteResult | null> {
    try {
      // The claim continues the trace of the command that made the thread eligible.
      const parent = afterCommit.take(threadId) ?? context.active();
      const result = await context.with(parent, () => engine.execute(threadId, command, { actor: ACTOR }));
      if (result.events.length > 0) log.debug({ threadId, command: command.type, version: result.version }, "drain");
      return result;
    } catch (error) {
      if (error instanceof DomainError) return null;
      throw error;
    }
  }

  const scan = async (why: string) => {
    const threadIds = await store.threadsWithWork();
    log.debug({ why, threads: threadIds.length }, "drain scan");
    let next = 0;
    const worker = async () => {
      while (!closed && next < threadIds.length) await serial.request(threadIds[next++]);
    };
    await Promise.all(Array.from({ length: Math.min(SCAN_CONCURRENCY, threadIds.length) }, worker));
  };

  // Subscribe first, then scan: a command committed between the two is seen by at least one.
  const unsubscribe = await engine.feed.subscribe((events) => {
    if (closed) return;
    for (const e of events) announced.set(e.threadId, Math.max(e.version, announced.get(e.threadId) ?? 0));
    for (const threadId of new Set(events.map((e) => e.threadId))) void serial.request(threadId);
  });

  const sweep = () =>
    lease
      .tryWith("drain:sweep", () => scan("sweep"))
      .catch((error) => log.warn({ err: error }, "drain sweep failed"));
  const sweeper = setInterval(() => void sweep(), config.sweepIntervalMs);
  const startup = scan("startup").catch((error) => log.error({ err: error }, "drain startup scan failed; the sweep will retry"));

  return {
    recovered: startup,
    async close() {
      closed = true;
      clearInterval(sweeper);
      timers.clear();
      await unsubscribe();
      await startup;
      await serial.idle();
      timers.clear();
    },
  };
}
