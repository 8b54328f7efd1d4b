import { context } from "@opentelemetry/api";
import { channels } from "../cluster/bus.js";
import {
  DomainError, isEligible, nextWakeAt, sendingItem, type Command, type StoredEvent, type ThreadState,
} from "../domain/index.js";
import type { ExecuteResult } from "../engine/types.js";
import { afterCommit } from "../observability/tracing.js";
import type { Closable, Services } from "../services.js";
import { StoreUnavailableError } from "../store/types.js";
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
 * Triggers: every committed command on the bus (whatever changed, the thread is looked at
 * again), the startup scan (subscribed first, so nothing committed meanwhile is missed),
 * per-thread timers, and a slow periodic sweep for whatever the bus lost.
 */
export interface DrainReactor extends Closable {
  /** Settles once the startup scan has looked at every thread with work. */
  readonly recovered: Promise<void>;
}

export async function startDrainReactor(services: Services): Promise<DrainReactor> {
  const { engine, store, bus, lease, config, logger } = services;
  const log = logger.child({ component: "drain" });
  const bootedAt = services.now().getTime();
  let closed = false;

  const reconcile = async (threadId: string): Promise<void> => {
    if (closed) return;
    try {
      await settle(threadId);
    } catch (error) {
      if (closed) return;
      if (!(error instanceof StoreUnavailableError)) log.error({ err: error, threadId }, "drain reconcile failed");
      else log.warn({ threadId, err: error.message }, "store unavailable; will look again");
      timers.at(threadId, new Date(services.now().getTime() + RETRY_AFTER_ERROR_MS));
    }
  };
  const serial = new SerialPerKey(reconcile);
  const timers = new KeyedTimers(services.now, (threadId) => {
    lease
      .tryWith(`drain:thread:${threadId}`, () => serial.request(threadId))
      .catch((error) => log.warn({ err: error, threadId }, "drain timer lease failed; the sweep will look again"));
  });

  /** Brings one thread to rest: issue what is due now, then arm a timer for what is due later. */
  async function settle(threadId: string): Promise<void> {
    let state = await engine.load(threadId);
    let command = due(state, services.now());
    while (command !== null && !closed) {
      const result = await issue(threadId, command);
      if (result === null) return timers.cancel(threadId);
      state = result.state;
      // Nothing appended means the decider saw a newer state (another instance won, a
      // command landed meanwhile): that commit's own event brings us back.
      command = result.events.length > 0 ? due(state, services.now()) : null;
    }
    const wake = wakeAt(state, services.now());
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

  /** The command due now, if any. The decider re-checks everything; this only avoids useless writes. */
  function due(state: ThreadState, now: Date): Command | null {
    const sending = sendingItem(state);
    if (sending && sending.dispatchId && timeoutAt(sending.updatedAt) <= now.getTime()) {
      return { type: "drain.timeout", queueItemId: sending.queueItemId, dispatchId: sending.dispatchId };
    }
    return isEligible(state, now) ? { type: "drain.claim" } : null;
  }

  function wakeAt(state: ThreadState, now: Date): Date | null {
    const sending = sendingItem(state);
    if (sending) return new Date(timeoutAt(sending.updatedAt));
    return nextWakeAt(state, now);
  }

  /**
   * A sending item's `updatedAt` is its claim time (nothing else may change a sending item).
   * The clock starts no earlier than this process did: an agent could not start a turn
   * while the server was down, so a restart gives it a full timeout to reconnect.
   */
  const timeoutAt = (claimedAt: string) => Math.max(Date.parse(claimedAt), bootedAt) + config.dispatchTimeoutMs;

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
  const unsubscribe = await bus.subscribe(channels.events, (message) => {
    if (closed) return;
    let threadIds: Set<string>;
    try {
      threadIds = threadsOf(message);
    } catch (error) {
      // Not ours to crash on: the sweep still finds whatever this message was about.
      return log.warn({ err: error }, "unreadable message on the events channel");
    }
    for (const threadId of threadIds) void serial.request(threadId);
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

function threadsOf(message: Uint8Array): Set<string> {
  const events = JSON.parse(new TextDecoder().decode(message)) as StoredEvent[];
  return new Set(events.map((e) => e.threadId));
}
