import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { channels, type Bus } from "../cluster/bus.js";
import {
  decide, DomainError, initialState, replay,
  type Command, type DrainPolicy, type StoredEvent, type ThreadState,
} from "../domain/index.js";
import { VersionConflictError, type EventStore } from "../store/types.js";
import { CommandIdReusedError, EngineClosedError } from "./errors.js";
import { fingerprintOf } from "./fingerprint.js";
import { Lanes } from "./lanes.js";
import { StateCache } from "./state-cache.js";
import type { Engine, ExecuteOptions, ExecuteResult } from "./types.js";


export interface EngineOptions {
  store: EventStore;
  bus: Bus;
  now: () => Date;
  policy: DrainPolicy;
  logger: Logger;
  /** Thread states kept in memory (default 10,000). */
  cacheSize?: number;
}

/** How often one command is decided again after losing the version race to another writer. */
const MAX_ATTEMPTS = 20;

/** What the store remembers of a command, for idempotent retries. */
interface Remembered {
  version: number;
}

/** Commands that may claim the head item: pending edits are flushed before they decide. */
const mayClaim = (c: Command): boolean =>
  c.type === "drain.claim" || c.type === "queue.sendNow" || (c.type === "queue.add" && c.sendNow);

const encoder = new TextEncoder();

export function createEngine(options: EngineOptions): Engine {
  const { store, bus, now, policy, logger } = options;
  const cache = new StateCache(options.cacheSize ?? 10_000);
  const lanes = new Lanes();
  const hooks = new Set<(threadId: string) => Promise<void>>();
  let closed = false;

  /** The cached state caught up with the log, so several processes can share one database. */
  async function current(threadId: string): Promise<ThreadState> {
    const cached = cache.get(threadId) ?? initialState(threadId);
    const newer = await store.readThread(threadId, cached.version);
    const state = newer.length ? replay(cached, newer) : cached;
    cache.set(state);
    return state;
  }

  async function remembered(threadId: string, commandId: string, fingerprint: string): Promise<ExecuteResult | null> {
    const memory = await store.findCommand(threadId, commandId);
    if (!memory) return null;
    if (memory.fingerprint !== fingerprint) throw new CommandIdReusedError(threadId, commandId);
    const state = await current(threadId);
    return { version: (memory.result as Remembered).version, events: [], state, replayed: true };
  }

  async function run(threadId: string, command: Command, opts: ExecuteOptions, commandId: string, fingerprint: string) {
    for (let attempt = 1; ; attempt++) {
      // An id the caller chose may have run already (a retry after a lost answer).
      if (opts.commandId !== undefined) {
        const replayed = await remembered(threadId, commandId, fingerprint);
        if (replayed) return replayed;
      }
      const before = await current(threadId);
      const at = now();
      const decision = decide(before, command, { now: at, policy });
      if (decision instanceof DomainError) throw decision;
      if (decision.length === 0) return { version: before.version, events: [], state: before, replayed: false };

      const createdAt = at.toISOString();
      const after = replay(before, decision.map((e, i) => ({ ...e, version: before.version + i + 1, createdAt })));
      let events: StoredEvent[];
      try {
        events = await store.append({
          threadId,
          workspaceId: after.workspaceId,
          expectedVersion: before.version,
          commandId,
          fingerprint,
          actor: opts.actor,
          createdAt,
          events: decision,
          before,
          after,
          result: { version: after.version } satisfies Remembered,
        });
      } catch (error) {
        // Whatever happened, the cached state may be behind the log now.
        cache.forget(threadId);
        if (error instanceof VersionConflictError && attempt < MAX_ATTEMPTS) {
          logger.debug({ threadId, attempt, command: command.type }, "version conflict: deciding again on fresh state");
          continue;
        }
        throw error;
      }
      cache.set(after);
      publish(events);
      return { version: after.version, events, state: after, replayed: false };
    }
  }

  function publish(events: StoredEvent[]): void {
    // The bus is a fast path; the log is the truth, so a failed publish loses nothing.
    bus.publish(channels.events, encoder.encode(JSON.stringify(events))).catch((err: unknown) =>
      logger.warn({ err, threadId: events[0]?.threadId }, "could not publish committed events"),
    );
  }

  return {
    async execute(threadId, command, opts) {
      if (closed) throw new EngineClosedError();
      const commandId = opts.commandId ?? randomUUID();
      const fingerprint = fingerprintOf(command);
      // Outside the thread's lane: a hook issues commands (edits) on the same thread.
      if (mayClaim(command)) await Promise.all([...hooks].map((hook) => hook(threadId)));
      return lanes.run(threadId, () => run(threadId, command, opts, commandId, fingerprint));
    },

    load(threadId) {
      return lanes.run(threadId, () => current(threadId));
    },

    beforeClaim(hook) {
      hooks.add(hook);
      return () => {
        hooks.delete(hook);
      };
    },

    async close() {
      closed = true;
      await lanes.idle();
    },
  };
}
