import { randomUUID } from "node:crypto";
import { LRUCache } from "lru-cache";
import { context, SpanStatusCode, type Context } from "@opentelemetry/api";
import type { Logger } from "pino";
import type { Bus } from "../cluster/bus.js";
import {
  decide, DomainError, initialState, mayClaim, replay,
  type Command, type DrainPolicy, type StoredEvent, type ThreadState,
} from "../domain/index.js";
import { StoreUnavailableError, VersionConflictError, type AppendRequest, type EventStore } from "../store/types.js";
import { CommandIdReusedError, EngineClosedError } from "./errors.js";
import { EventFeed } from "./feed.js";
import { afterCommit, ofDispatch, tracer } from "../tracing.js";
import { fingerprintOf } from "./fingerprint.js";
import { Lanes } from "./lanes.js";
import type { Engine, ExecuteOptions, ExecuteResult, PreClaimBarrier } from "./types.js";

export interface EngineOptions {
  store: EventStore;
  bus: Bus;
  now: () => Date;
  policy: DrainPolicy;
  logger: Logger;
  /** Thread states kept in memory (default 10,000). */
  cacheSize?: number;
}

/** How often a batch is decided again after losing the version race to another writer. */
const MAX_ATTEMPTS = 20;
/** Commands of one thread decided and appended together at most. */
const MAX_CHAIN = 64;

/** What the store remembers of a command, for idempotent retries. */
interface Remembered {
  version: number;
}

interface Job {
  command: Command;
  options: ExecuteOptions;
  commandId: string;
  fingerprint: string;
  /** The caller's trace context: this command's decide, append and publish spans go under it. */
  trace: Context;
  resolve(result: ExecuteResult): void;
  reject(error: unknown): void;
}

type Outcome =
  | { kind: "done"; result: ExecuteResult }
  | { kind: "refused"; error: unknown }
  | { kind: "appended"; index: number; state: ThreadState };

/**
 * command → decide → append → project → publish.
 *
 * Commands of one thread queue in a mailbox; each turn of the thread's lane takes all of
 * them, decides them one after another on the state the previous one leaves, and appends
 * them as one chain (group commit within a thread; the store groups threads). Decisions
 * start from the cached state without reading the log: an append decided on a stale state
 * cannot commit (its version slot is taken), and a refusal or no-op is confirmed against
 * the log before it is answered. So several processes can share one database.
 */
export function createEngine(options: EngineOptions): Engine {
  const { store, bus, now, policy, logger } = options;
  const feed = new EventFeed(bus, logger);
  // Committed thread states, least recently used evicted first: only ever a starting point
  // (a decision on a stale one cannot commit, see above).
  const cache = new LRUCache<string, ThreadState>({ max: options.cacheSize ?? 10_000 });
  const lanes = new Lanes();
  const mailboxes = new Map<string, Job[]>();
  const barriers = new Set<PreClaimBarrier>();
  let closed = false;

  /** The cached state caught up with the log. The cache only ever holds committed states. */
  async function current(threadId: string): Promise<ThreadState> {
    const cached = cache.get(threadId) ?? initialState(threadId);
    const newer = await store.readThread(threadId, cached.version);
    const state = newer.length ? replay(cached, newer) : cached;
    cache.set(threadId, state);
    return state;
  }

  /** Answers of commands whose caller-chosen id already ran (a retry after a lost answer). */
  async function recall(threadId: string, jobs: Job[], state: ThreadState): Promise<Map<Job, Outcome>> {
    const recalled = new Map<Job, Outcome>();
    for (const job of jobs) {
      if (job.options.commandId === undefined) continue;
      const memory = await store.findCommand(threadId, job.commandId);
      if (!memory) continue;
      recalled.set(
        job,
        memory.fingerprint === job.fingerprint
          ? { kind: "done", result: { version: (memory.result as Remembered).version, events: [], state, replayed: true } }
          : { kind: "refused", error: new CommandIdReusedError(threadId, job.commandId) },
      );
    }
    return recalled;
  }

  async function run(threadId: string, jobs: Job[]): Promise<void> {
    let fromLog = false;
    for (let attempt = 1; ; attempt++) {
      const cached = fromLog ? undefined : cache.get(threadId);
      fromLog = !cached;
      const start = cached ?? (await current(threadId));
      const recalled = fromLog ? await recall(threadId, jobs, start) : new Map<Job, Outcome>();

      const at = now();
      const createdAt = at.toISOString();
      const requests: AppendRequest[] = [];
      let state = start;
      const outcomes = jobs.map((job): Outcome => {
        const known = recalled.get(job);
        if (known) return known;
        const decideSpan = tracer.startSpan("decide", { attributes: { "turnqueue.command": job.command.type } }, job.trace);
        const decision = decide(state, job.command, { now: at, policy });
        decideSpan.end();
        if (decision instanceof DomainError) return { kind: "refused", error: decision };
        if (decision.length === 0) return { kind: "done", result: { version: state.version, events: [], state, replayed: false } };
        const before = state;
        state = replay(before, decision.map((e, i) => ({ ...e, version: before.version + i + 1, createdAt })));
        requests.push({
          threadId,
          workspaceId: state.workspaceId,
          expectedVersion: before.version,
          commandId: job.commandId,
          fingerprint: job.fingerprint,
          actor: job.options.actor,
          createdAt,
          events: decision,
          before,
          after: state,
          result: { version: state.version } satisfies Remembered,
        });
        return { kind: "appended", index: requests.length - 1, state };
      });
      // A refusal or no-op seen on the cached state may be stale: confirm it on the log.
      if (!fromLog && outcomes.some((o) => o.kind !== "appended")) {
        fromLog = true;
        continue;
      }

      let stored: StoredEvent[][] = [];
      // This instance's own readers of the commit (collab's documents) have it before anyone is answered.
      let readLocally: Promise<void> | undefined;
      if (requests.length > 0) {
        const appending = jobs.filter((_, i) => outcomes[i]!.kind === "appended");
        const appendSpans = appending.map((job) => tracer.startSpan("append", { attributes: { "turnqueue.chain": requests.length } }, job.trace));
        try {
          stored = await store.appendChain(requests);
        } catch (error) {
          for (const span of appendSpans) span.setStatus({ code: SpanStatusCode.ERROR }).end();
          if (error instanceof VersionConflictError && attempt < MAX_ATTEMPTS) {
            logger.debug({ threadId, attempt, commands: jobs.length }, "version conflict: deciding again on fresh state");
            fromLog = true;
            continue;
          }
          // The chain is one statement: a command the database refuses (a value it cannot
          // store that got past validation) would fail every command grouped with it, other
          // users' too. So each runs again alone, in order, and only that one fails. An
          // outage fails them all: alone they would fail the same way.
          if (jobs.length > 1 && !(error instanceof StoreUnavailableError) && !(error instanceof VersionConflictError)) {
            logger.warn({ err: error, threadId, commands: jobs.length }, "a grouped append failed: running its commands one by one");
            for (const job of jobs) await run(threadId, [job]);
            return;
          }
          for (const job of jobs) job.reject(error);
          return;
        }
        for (const span of appendSpans) span.end();
        cache.set(threadId, state);
        publish(stored.flat(), appending);
        readLocally = feed.committedHere(stored.flat());
      }
      const answer = () => jobs.forEach((job, i) => {
        const o = outcomes[i]!;
        switch (o.kind) {
          case "done":
            return job.resolve(o.result);
          case "refused":
            return job.reject(o.error);
          case "appended":
            return job.resolve({ version: o.state.version, events: stored[o.index]!, state: o.state, replayed: false });
        }
      });
      // Not awaited here: the thread's lane goes on meanwhile (a local reader may load state through it).
      if (readLocally) void readLocally.then(answer);
      else answer();
      return;
    }
  }

  /** Takes the thread's whole mailbox, in chains of distinct command ids (one row each). */
  async function drain(threadId: string): Promise<void> {
    const jobs = mailboxes.get(threadId) ?? [];
    mailboxes.delete(threadId);
    while (jobs.length > 0) {
      const ids = new Set<string>();
      let n = 0;
      while (n < jobs.length && n < MAX_CHAIN && !ids.has(jobs[n]!.commandId)) ids.add(jobs[n++]!.commandId);
      const chain = jobs.splice(0, n);
      try {
        await run(threadId, chain);
      } catch (error) {
        // A read failed (store unavailable): these commands fail, the lane goes on.
        for (const job of chain) job.reject(error);
      }
    }
  }

  function publish(events: StoredEvent[], jobs: Job[]): void {
    // Before the feed carries them: what they trigger in this process (the reactor's claim, the
    // dispatch to the agent) continues the committing command's trace.
    // The last command of the chain is the one whose commit the thread's next claim follows.
    afterCommit.put(events[0]!.threadId, jobs.at(-1)!.trace);
    for (const e of events) {
      if (e.type !== "queue.item-send-started") continue;
      const job = jobs.find((j) => j.commandId === e.commandId);
      if (job) ofDispatch.put(e.payload.dispatchId, job.trace);
    }
    // Each command's span lasts until the bus took its commit (not awaited: the bus is a fast
    // path, and the log is the truth, so a failed publish loses nothing but shows as failed).
    const spans = jobs.map((job) => tracer.startSpan("publish", {}, job.trace));
    void feed.publish(events).then((published) => {
      for (const span of spans) {
        if (!published) span.setStatus({ code: SpanStatusCode.ERROR, message: "the bus refused the commit" });
        span.end();
      }
    });
  }

  return {
    feed,

    async execute(threadId, command, opts) {
      if (closed) throw new EngineClosedError();
      const commandId = opts.commandId ?? randomUUID();
      const fingerprint = fingerprintOf(command);
      // Outside the thread's lane: a barrier may issue commands on the same thread.
      if (mayClaim(command)) {
        const waits = [...barriers].map((barrier) => barrier(threadId)).filter((w) => w !== undefined);
        if (waits.length > 0) await Promise.all(waits);
      }
      return new Promise<ExecuteResult>((resolve, reject) => {
        const job: Job = { command, options: opts, commandId, fingerprint, trace: context.active(), resolve, reject };
        const box = mailboxes.get(threadId);
        if (box) return void box.push(job);
        mailboxes.set(threadId, [job]);
        void lanes.run(threadId, () => drain(threadId));
      });
    },

    load(threadId, seen) {
      return lanes.run(threadId, async () => {
        const cached = seen === undefined ? undefined : cache.get(threadId);
        return cached && cached.version >= seen! ? cached : current(threadId);
      });
    },

    addPreClaimBarrier(barrier) {
      barriers.add(barrier);
      return () => {
        barriers.delete(barrier);
      };
    },

    async close() {
      closed = true;
      await lanes.idle();
      await feed.close();
    },
  };
}
