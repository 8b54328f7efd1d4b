import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { TRPCClientError } from "@trpc/client";
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "./router-types.js";
import { createTransport, type Transport } from "./transport.js";

type AgentInputs = inferRouterInputs<AppRouter>["agent"];
/** What the server sends to run: CONTRACT.md's Dispatch, typed from the router. */
export type Dispatch = inferRouterOutputs<AppRouter>["agent"]["dispatches"] extends AsyncIterable<infer T>
  ? T extends { data: infer D } ? D : T
  : never;
export type SessionStatus = AgentInputs["session"]["status"];
export type TurnOutcome = AgentInputs["turnEnded"]["outcome"];

/** Throw from a turn handler before `start()` to refuse the turn; `retryable` asks for another attempt later. */
export class TurnStartError extends Error {
  readonly retryable: boolean;
  constructor(message: string, options: { retryable: boolean }) {
    super(message);
    this.name = "TurnStartError";
    this.retryable = options.retryable;
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
   * its turn when it returned.
   */
  start(turnId?: string): Promise<string>;
  /** Aborted when the agent is closed. */
  readonly signal: AbortSignal;
}

export type TurnHandler = (turn: Turn) => Promise<{ outcome: TurnOutcome; error?: string } | void>;
/** Deliver a steer into the running turn `dispatch.expectedTurnId`; throw to reject it. */
export type SteerHandler = (dispatch: Dispatch, signal: AbortSignal) => Promise<void>;

export interface RunAgentOptions {
  url: string;
  /** An `agent` token of the workspace. */
  token: string;
  onTurn: TurnHandler;
  /** Without one, steers are rejected (the item goes back to its place as failed). */
  onSteer?: SteerHandler;
  /**
   * Keep a session ready on every thread of the workspace, existing and created later
   * (a runtime whose sessions cost nothing, like the echo agent). Otherwise call `session()`.
   */
  autoReady?: boolean;
  /** Errors the agent recovers from by itself (lost connections, retried reports). */
  onError?: (error: unknown) => void;
}

export interface Agent {
  /** Reports a thread's session status. */
  session(threadId: string, status: SessionStatus, error?: string): Promise<void>;
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
  const trpc = createTransport(options);
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
    const turn: Turn = {
      dispatch,
      signal: closing.signal,
      async start(id = randomUUID()) {
        if (turnId) return turnId;
        await report(() => trpc.agent.turnStarted.mutate({ threadId, queueItemId, turnId: id, commandId: `started:${dispatchId}` }));
        remember(started, queueItemId);
        return (turnId = id);
      },
    };
    let end: { outcome: TurnOutcome; error?: string };
    try {
      end = (await options.onTurn(turn)) ?? { outcome: "completed" };
      // Closing before the turn started leaves the dispatch unacknowledged: the server
      // redelivers it to the next runtime (or times it out) rather than hear a false start.
      if (!turnId && closing.signal.aborted) return;
      if (!turnId) await turn.start();
    } catch (error) {
      if (error instanceof ReportRefusedError) return onError(error);
      if (!turnId && closing.signal.aborted) return;
      if (!turnId) {
        const retryable = error instanceof TurnStartError && error.retryable;
        await report(() =>
          trpc.agent.turnStartFailed.mutate({ threadId, queueItemId, reason: messageOf(error), retryable, commandId: `failed:${dispatchId}` }),
        ).catch(onError);
        return;
      }
      end = { outcome: closing.signal.aborted ? "interrupted" : "failed", error: messageOf(error) };
    }
    const finishedTurn = turnId!;
    await report(() =>
      trpc.agent.turnEnded.mutate({
        threadId,
        turnId: finishedTurn,
        outcome: end.outcome,
        error: end.error ?? null,
        commandId: `ended:${finishedTurn}`,
      }),
    ).catch(onError);
  }

  async function runSteer(dispatch: Dispatch): Promise<void> {
    const { threadId, queueItemId, dispatchId, expectedTurnId } = dispatch;
    try {
      if (!options.onSteer) throw new Error("this agent runtime does not take steers");
      if (!expectedTurnId) throw new Error("a steer without the turn it is for");
      await options.onSteer(dispatch, closing.signal);
      await report(() =>
        trpc.agent.turnStarted.mutate({ threadId, queueItemId, turnId: expectedTurnId, commandId: `started:${dispatchId}` }),
      );
      remember(started, queueItemId);
    } catch (error) {
      if (error instanceof ReportRefusedError) return onError(error);
      await report(() =>
        trpc.agent.turnStartFailed.mutate({ threadId, queueItemId, reason: messageOf(error), retryable: false, commandId: `failed:${dispatchId}` }),
      ).catch(onError);
    }
  }

  function receive(dispatch: Dispatch): void {
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

  const session = async (threadId: string, status: SessionStatus, error?: string) => {
    await report(() => trpc.agent.session.mutate({ threadId, status, error: error ?? null, commandId: randomUUID() }));
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
      onData: ({ id, data }) => {
        lastEventId = id;
        receive(data);
      },
      onError,
    }),
  );

  /** Threads this process has looked at: a running turn on one seen for the first time is a dead runtime's. */
  const known = new Set<string>();
  const attach = (threadId: string, sessionStatus: string) => {
    const first = !known.has(threadId);
    known.add(threadId);
    if (busyThreads.has(threadId) || sessionStatus === "ready") return;
    if (sessionStatus === "running" && !first) return;
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
    session,
    async idle() {
      while (running.size > 0) await Promise.allSettled([...running.values()]);
    },
    async close() {
      stopDispatches();
      stopThreads();
      closing.abort();
      await Promise.allSettled([...running.values()]);
      await trpc.close();
    },
  };
}

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
