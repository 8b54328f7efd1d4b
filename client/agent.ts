import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { TRPCClientError } from "@trpc/client";
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "./router-types.js";
import type { TokenOption } from "./token.js";
import { createTransport, type Transport, type TransportOptions } from "./transport.js";

type AgentInputs = inferRouterInputs<AppRouter>["agent"];
/** Everything the server sends: the public Dispatch (docs/contract.md), typed from the router. */
export type AnyDispatch = inferRouterOutputs<AppRouter>["agent"]["dispatches"] extends AsyncIterable<infer T>
  ? T extends { data: infer D } ? D : T
  : never;
/** A message to run: a new turn (`kind: "turn"`) or a steer into the running one. */
export type Dispatch = Exclude<AnyDispatch, { kind: "interrupt" }>;
/** Stop turn `expectedTurnId`: runAgent aborts that turn's `interrupt` signal. */
export type InterruptDispatch = Extract<AnyDispatch, { kind: "interrupt" }>;
export type SessionStatus = AgentInputs["session"]["status"];
export type TurnOutcome = AgentInputs["turnEnded"]["outcome"];

/**
 * Throw from a turn handler before `start()` to refuse the turn; `retryable` asks for another
 * attempt later, and `retryAt` says when, if the agent told (a rate limit's reset): the item
 * stays queued and the queue holds until then (pauseReason `rate-limited`). Leave it out when the agent gave no time.
 */
export class TurnStartError extends Error {
  readonly retryable: boolean;
  readonly retryAt: Date | undefined;
  constructor(message: string, options: { retryable: boolean; retryAt?: Date }) {
    super(message);
    this.name = "TurnStartError";
    this.retryable = options.retryable;
    this.retryAt = options.retryable ? options.retryAt : undefined;
  }
}

/** The server no longer expects this report (the dispatch timed out, the thread was deleted…). */
export class ReportRefusedError extends Error {
  constructor(
    readonly reason: string | null,
    message: string,
  ) {
    super(message);
    this.name = "ReportRefusedError";
  }
}

export interface Turn {
  readonly dispatch: Dispatch;
  /**
   * Reports the turn as started: call it once the underlying agent accepted the message.
   * Idempotent. Rejects with ReportRefusedError when the server no longer expects this
   * turn; the handler should then stop. A handler that returns without calling it started
   * its turn when it returned (its start and end then go in one report).
   */
  start(turnId?: string): Promise<string>;
  /**
   * Stores the agent's own session id (a Codex thread, an ACP session) with the thread; it
   * comes back on every later dispatch as `runtimeSessionId`, so a restarted runtime resumes
   * that session and keeps no state of its own.
   */
  session(runtimeSessionId: string): Promise<void>;
  /**
   * Tells that the agent's account is rate-limited until `retryAt` (a limit the agent reported
   * while this turn ran): the thread's queue holds until then and resumes by itself. For a
   * turn that never started, throw a TurnStartError with `retryAt` instead.
   */
  rateLimited(retryAt: Date, reason: string): Promise<void>;
  /** Aborted when the agent is closed. */
  readonly signal: AbortSignal;
  /**
   * Aborted when the user asks to stop this turn (`thread.interrupt`): stop the agent's turn
   * and return. A handler that returns after it was aborted ends the turn `interrupted`.
   */
  readonly interrupt: AbortSignal;
}

export type TurnHandler = (turn: Turn) => Promise<{ outcome: TurnOutcome; error?: string } | void>;
/** Deliver a steer into the running turn `dispatch.expectedTurnId`; throw to reject it. */
export type SteerHandler = (dispatch: Dispatch, signal: AbortSignal) => Promise<void>;

/**
 * How one kind of agent runs turns (the echo agent, Codex, any ACP agent): everything else
 * (dispatch stream, dedupe, reconnects, reports, interrupts) is runAgent's, in one place.
 */
export interface AgentAdapter {
  onTurn: TurnHandler;
  /** Without one, steers are rejected (the item goes back to its place as failed). */
  onSteer?: SteerHandler;
  /**
   * Keep a session ready on every thread of the workspace, existing and created later
   * (a runtime whose sessions cost nothing, like the echo agent). Otherwise call `session()`.
   */
  autoReady?: boolean;
  /** Called by `Agent.close()` once no handler runs any more (stop the agent process). */
  close?: () => Promise<void>;
}

export interface RunAgentOptions extends AgentAdapter {
  url: string;
  /**
   * An `agent` token of the workspace, or a function returning a fresh one: called again
   * before the one held expires; the dispatch stream reconnects with it and resumes.
   */
  token: TokenOption;
  /** Errors the agent recovers from by itself (lost connections, retried reports). */
  onError?: (error: unknown) => void;
  /** The server connection opened, or is down and being retried with backoff. */
  onConnection?: TransportOptions["onConnection"];
}

export interface Agent {
  /** Reports a thread's session status; `rate-limited` with `retryAt` (ISO time) holds the queue until then. */
  session(threadId: string, status: SessionStatus, error?: string, retryAt?: string): Promise<void>;
  /** Resolves once every turn this agent runs now has finished and been reported. */
  idle(): Promise<void>;
  /** Stops receiving dispatches, aborts running handlers and closes the connection. */
  close(): Promise<void>;
}

const REPORT_RETRY_MAX_MS = 2_000;
const REMEMBERED = 10_000;
/** Codes that are the server's final word on a report; anything else is retried. */
const FINAL = new Set(["BAD_REQUEST", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "CONFLICT", "UNPROCESSABLE_CONTENT"]);

/**
 * The agent side of Turnqueue: receives dispatched turns and reports what became of them.
 *
 * - The dispatch stream is resumable: after a reconnect it continues after the last id seen.
 * - `queueItemId` is the idempotency key: a handler runs at most once per item in this
 *   process however often the item is redelivered. Only an attempt that never started
 *   (a start failure, so the server dispatches the item again) runs a new handler.
 * - Every report carries a commandId derived from the dispatch or turn, and is retried until
 *   the server answers, so a report lost in a crash is re-sent and never applied twice.
 */
export function runAgent(options: RunAgentOptions): Agent {
  const trpc = createTransport({ ...options, calls: "socket" });
  const onError = options.onError ?? (() => {});
  const closing = new AbortController();
  // Every running handler listens to it: one listener per concurrent turn is expected.
  setMaxListeners(0, closing.signal);
  /** queueItemId → its handler run, while it runs. */
  const running = new Map<string, Promise<void>>();
  /**
   * Items whose turn started here: never run again. A redelivery (a reconnect, a stale poll
   * crossing the acknowledgement) comes soon after, so the most recent ones are all that is kept.
   */
  const started = new Set<string>();
  /** Dispatches already handled, whatever came of them: a redelivered one is not run again. */
  const handled = new Set<string>();
  const remember = (set: Set<string>, id: string) => {
    set.add(id);
    if (set.size > REMEMBERED) set.delete(set.values().next().value!);
  };
  /** `threadId turnId` → the turn's interrupt, while its handler runs here. */
  const interrupts = new Map<string, AbortController>();
  const turnKey = (threadId: string, turnId: string) => `${threadId} ${turnId}`;
  /** Threads on which a handler of ours is running: their session is ours to report. */
  const busyThreads = new Map<string, number>();
  let lastEventId: string | undefined;

  async function report<T>(send: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await send();
      } catch (error) {
        const code = error instanceof TRPCClientError ? (error.data?.code as string | undefined) : undefined;
        if (code && FINAL.has(code)) {
          throw new ReportRefusedError((error as TRPCClientError<AppRouter>).data?.reason ?? null, (error as Error).message);
        }
        if (closing.signal.aborted) throw error;
        onError(error);
        await sleep(Math.min(REPORT_RETRY_MAX_MS, 50 * 2 ** attempt), closing.signal).catch(() => {});
      }
    }
  }

  async function runTurn(dispatch: Dispatch): Promise<void> {
    const { threadId, queueItemId, dispatchId } = dispatch;
    let turnId: string | null = null;
    const interrupt = new AbortController();
    let key: string | null = null;
    const turn: Turn = {
      dispatch,
      signal: closing.signal,
      interrupt: interrupt.signal,
      async start(id = randomUUID()) {
        if (turnId) return turnId;
        // Known before the report lands: an interrupt may follow the report at once.
        interrupts.set((key = turnKey(threadId, id)), interrupt);
        await report(() =>
          trpc.agent.turnStarted.mutate({ threadId, queueItemId, dispatchId, turnId: id, commandId: `started:${dispatchId}` }, traced(dispatch)),
        );
        remember(started, queueItemId);
        return (turnId = id);
      },
      session: (runtimeSessionId) => session(threadId, turnId ? "running" : "ready", undefined, runtimeSessionId),
      rateLimited: (retryAt, reason) => session(threadId, "rate-limited", reason, undefined, retryAt.toISOString()),
    };
    let end: { outcome: TurnOutcome; error?: string };
    // Set when the handler returned without reporting a start: its end reports both.
    let unreported: string | undefined;
    try {
      end = (await options.onTurn(turn)) ?? { outcome: interrupt.signal.aborted ? "interrupted" : "completed" };
      // Closing before the turn started leaves the dispatch unacknowledged: the server
      // redelivers it to the next runtime (or times it out) rather than hear a false start.
      if (!turnId && closing.signal.aborted) return;
      if (!turnId) turnId = unreported = randomUUID();
    } catch (error) {
      if (error instanceof ReportRefusedError) return onError(error);
      if (!turnId && closing.signal.aborted) return;
      if (!turnId) {
        const retryable = error instanceof TurnStartError && error.retryable;
        const retryAt = error instanceof TurnStartError ? error.retryAt?.toISOString() : undefined;
        await report(() =>
          trpc.agent.turnStartFailed.mutate({ threadId, queueItemId, dispatchId, reason: messageOf(error), retryable, retryAt, commandId: `failed:${dispatchId}` }),
        ).catch(onError);
        return;
      }
      end = { outcome: closing.signal.aborted || interrupt.signal.aborted ? "interrupted" : "failed", error: messageOf(error) };
    } finally {
      if (key) interrupts.delete(key);
    }
    const finishedTurn = turnId!;
    await report(() =>
      trpc.agent.turnEnded.mutate(
        {
          threadId,
          turnId: finishedTurn,
          outcome: end.outcome,
          error: end.error ?? null,
          ...(unreported && { queueItemId, dispatchId }),
          commandId: `ended:${finishedTurn}`,
        },
        unreported ? traced(dispatch) : undefined,
      ),
    )
      .then(() => unreported && remember(started, queueItemId))
      .catch(onError);
  }

  async function runSteer(dispatch: Dispatch): Promise<void> {
    const { threadId, queueItemId, dispatchId, expectedTurnId } = dispatch;
    try {
      if (!options.onSteer) throw new Error("this agent runtime does not take steers");
      if (!expectedTurnId) throw new Error("a steer without the turn it is for");
      // A turn whose handler does not run here is a dead runtime's: steered, the message
      // would be acknowledged into a turn nobody runs (`attach` ends that turn).
      if (!interrupts.has(turnKey(threadId, expectedTurnId))) throw new Error("the turn it was for ended with the agent runtime that ran it");
      await options.onSteer(dispatch, closing.signal);
      await report(() =>
        trpc.agent.turnStarted.mutate({ threadId, queueItemId, dispatchId, turnId: expectedTurnId, commandId: `started:${dispatchId}` }, traced(dispatch)),
      );
      remember(started, queueItemId);
    } catch (error) {
      if (error instanceof ReportRefusedError) return onError(error);
      await report(() =>
        trpc.agent.turnStartFailed.mutate({ threadId, queueItemId, dispatchId, reason: messageOf(error), retryable: false, commandId: `failed:${dispatchId}` }),
      ).catch(onError);
    }
  }

  /**
   * Stops the turn if it runs here. A turn this process does not run cannot end by itself
   * any more (its runtime is gone), so it is reported ended `interrupted` at once.
   */
  function receiveInterrupt(dispatch: InterruptDispatch): void {
    const { threadId, expectedTurnId, dispatchId } = dispatch;
    if (closing.signal.aborted || handled.has(dispatchId)) return;
    remember(handled, dispatchId);
    const running = interrupts.get(turnKey(threadId, expectedTurnId));
    if (running) return running.abort();
    void report(() =>
      trpc.agent.turnEnded.mutate({
        threadId,
        turnId: expectedTurnId,
        outcome: "interrupted",
        error: "the turn's runtime is gone",
        commandId: `ended:${expectedTurnId}`,
      }),
    ).catch(onError);
  }

  function receive(dispatch: AnyDispatch): void {
    if (dispatch.kind === "interrupt") return receiveInterrupt(dispatch);
    const { queueItemId, threadId } = dispatch;
    if (closing.signal.aborted || started.has(queueItemId) || running.has(queueItemId) || handled.has(dispatch.dispatchId)) return;
    busyThreads.set(threadId, (busyThreads.get(threadId) ?? 0) + 1);
    const run = (dispatch.kind === "steer" ? runSteer(dispatch) : runTurn(dispatch))
      .catch(onError)
      .finally(() => {
        running.delete(queueItemId);
        remember(handled, dispatch.dispatchId);
        const left = busyThreads.get(threadId)! - 1;
        if (left > 0) busyThreads.set(threadId, left);
        else busyThreads.delete(threadId);
      });
    running.set(queueItemId, run);
  }

  const session = async (threadId: string, status: SessionStatus, error?: string, runtimeSessionId?: string, retryAt?: string) => {
    // One id for every retry of this report: a report that landed but whose answer was lost counts once.
    const commandId = randomUUID();
    await report(() => trpc.agent.session.mutate({ threadId, status, error: error ?? null, runtimeSessionId, retryAt, commandId }));
  };

  /**
   * tRPC resubscribes by itself after a lost connection (sending the last tracked id); a
   * subscription the server ended with an error (database down at the moment) is ours to renew.
   */
  function keepSubscribed(subscribe: (onError: (error: unknown) => void) => { unsubscribe(): void }) {
    let current: { unsubscribe(): void } | null = null;
    let timer: NodeJS.Timeout | undefined;
    const renew = () => {
      current = subscribe((error) => {
        onError(error);
        if (!closing.signal.aborted) timer = setTimeout(renew, 1_000);
      });
    };
    renew();
    return () => {
      clearTimeout(timer);
      current?.unsubscribe();
    };
  }

  const stopDispatches = keepSubscribed((onError) =>
    trpc.agent.dispatches.subscribe({ lastEventId }, {
      onStarted: () => options.onConnection?.({ state: "ready" }),
      onData: ({ id, data }) => {
        lastEventId = id;
        receive(data);
      },
      onError,
    }),
  );

  /** Threads this process has looked at: a running turn on one seen for the first time is a dead runtime's. */
  const known = new Set<string>();
  const runsTurnOn = (threadId: string) => [...interrupts.keys()].some((key) => key.startsWith(`${threadId} `));
  const attach = (threadId: string, sessionStatus: string) => {
    const first = !known.has(threadId);
    known.add(threadId);
    // A rate-limited session takes turns once its hold ends by itself: a "ready" would end it early.
    if (sessionStatus === "ready" || sessionStatus === "rate-limited") return;
    // A running turn is ours only if its handler runs here; one that is not is ended even
    // while a steer into it is being handled here (which refuses it: `runSteer`).
    if (sessionStatus === "running" ? !first || runsTurnOn(threadId) : busyThreads.has(threadId)) return;
    void (async () => {
      // A turn that was running before this runtime existed can never end: close that
      // session so the thread is not stuck behind it, then offer a fresh one.
      if (sessionStatus === "running") await session(threadId, "stopped", "the agent runtime restarted");
      await session(threadId, "ready");
    })().catch(onError);
  };
  const stopThreads = options.autoReady
    ? keepSubscribed((onError) =>
        trpc.agent.threads.subscribe(undefined, { onData: (t) => attach(t.threadId, t.sessionStatus), onError }),
      )
    : () => {};

  return {
    session: (threadId: string, status: SessionStatus, error?: string, retryAt?: string) => session(threadId, status, error, undefined, retryAt),
    async idle() {
      while (running.size > 0) await Promise.allSettled([...running.values()]);
    },
    async close() {
      stopDispatches();
      stopThreads();
      closing.abort();
      await Promise.allSettled([...running.values()]);
      await options.close?.();
      await trpc.close();
    },
  };
}

/** The dispatch's trace context, sent back with its start so the server's trace goes on. */
const traced = (dispatch: Dispatch) => (dispatch.traceparent ? { context: { traceparent: dispatch.traceparent } } : undefined);

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error)).slice(0, 4096) || "unknown error";

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

export { sleep as abortableSleep };
