import { AgentProcess } from "./child.js";
import { checkDispatchInput, DEFAULT_MAX_ATTACHMENT_BYTES } from "./dispatch-input.js";
import { TurnStartError, type AgentAdapter, type Dispatch, type Turn } from "../agent.js";
import { allows, type ApprovePolicy } from "./approval.js";
import type { InitializeParams } from "./codex-protocol/InitializeParams.js";
import type { AccountRateLimitsUpdatedNotification } from "./codex-protocol/v2/AccountRateLimitsUpdatedNotification.js";
import type { CodexErrorInfo } from "./codex-protocol/v2/CodexErrorInfo.js";
import type { ErrorNotification } from "./codex-protocol/v2/ErrorNotification.js";
import type { ItemStartedNotification } from "./codex-protocol/v2/ItemStartedNotification.js";
import type { RateLimitSnapshot } from "./codex-protocol/v2/RateLimitSnapshot.js";
import type { SandboxMode } from "./codex-protocol/v2/SandboxMode.js";
import type { ThreadResumeParams } from "./codex-protocol/v2/ThreadResumeParams.js";
import type { ThreadResumeResponse } from "./codex-protocol/v2/ThreadResumeResponse.js";
import type { ThreadStartParams } from "./codex-protocol/v2/ThreadStartParams.js";
import type { ThreadStartResponse } from "./codex-protocol/v2/ThreadStartResponse.js";
import type { Turn as CodexTurn } from "./codex-protocol/v2/Turn.js";
import type { TurnCompletedNotification } from "./codex-protocol/v2/TurnCompletedNotification.js";
import type { TurnInterruptParams } from "./codex-protocol/v2/TurnInterruptParams.js";
import type { TurnStartParams } from "./codex-protocol/v2/TurnStartParams.js";
import type { TurnStartResponse } from "./codex-protocol/v2/TurnStartResponse.js";
import type { TurnSteerParams } from "./codex-protocol/v2/TurnSteerParams.js";
import type { UserInput } from "./codex-protocol/v2/UserInput.js";
import { JsonlRpc, RpcClosedError } from "./jsonl-rpc.js";
import { looksTransient } from "./transient.js";

export interface CodexAdapterOptions {
  /** The directory Codex works in. */
  cwd: string;
  approve: ApprovePolicy;
  /** The `codex` executable (default: `codex` on PATH). */
  command?: string;
  /** Largest attachment a turn may carry, in bytes (default 20 MiB); more fails the item. */
  maxAttachmentBytes?: number;
  /** The child's environment (default: this process's); CODEX_HOME picks its config. */
  env?: NodeJS.ProcessEnv;
  /** Codex's own log lines (stderr); dropped by default. */
  onStderr?: (line: string) => void;
}

/** Codex errors that pass with time (rate limits, overload, the network): worth another attempt. */
const TRANSIENT = new Set([
  "rateLimitExceeded", "usageLimitExceeded", "serverOverloaded", "internalServerError", "flexUnavailable",
  "httpConnectionFailed", "responseStreamConnectionFailed", "responseStreamDisconnected",
]);
const errorKind = (info: CodexErrorInfo | null | undefined) =>
  info == null ? null : typeof info === "string" ? info : Object.keys(info)[0]!;
/** The model's HTTP status, when Codex forwards one (`{ someFailure: { httpStatusCode } }`). */
const httpStatusOf = (info: CodexErrorInfo | null | undefined): number | null => {
  if (info == null || typeof info === "string") return null;
  const detail = Object.values(info)[0] as { httpStatusCode?: number | null } | undefined;
  return detail?.httpStatusCode ?? null;
};
/** Rate limits and server errors pass with time; other statuses (404 unknown model, 401) do not. */
const transientStatus = (status: number | null) => status !== null && (status === 408 || status === 429 || status >= 500);

/** A Codex turn's end, as `turn/completed` tells it. */
interface TurnWatch {
  /** Resolves at the model's first sign of work on the turn (its turn has really started). */
  working: Promise<void>;
  completed: Promise<CodexTurn>;
  lastError: ErrorNotification | null;
  /** The account's rate limits as Codex told them while the turn ran (its reset times). */
  rateLimits: RateLimitSnapshot | null;
  markWorking(): void;
  complete(turn: CodexTurn): void;
  fail(error: Error): void;
}

function watchTurn(): TurnWatch {
  let markWorking!: () => void;
  let complete!: (t: CodexTurn) => void;
  let fail!: (e: Error) => void;
  const working = new Promise<void>((resolve) => (markWorking = resolve));
  const completed = new Promise<CodexTurn>((resolve, reject) => {
    complete = resolve;
    fail = reject;
  });
  completed.catch(() => {});
  return { working, completed, lastError: null, rateLimits: null, markWorking, complete, fail };
}

/** One running `codex app-server` and what it has loaded. */
interface CodexProcess {
  rpc: JsonlRpc;
  /** Turnqueue thread id → Codex thread id, for threads loaded in this process. */
  threads: Map<string, string>;
  /** Codex turn id → its watch. */
  turns: Map<string, TurnWatch>;
  /** Codex thread id → the watch of the turn being started there (notifications may precede the answer). */
  starting: Map<string, TurnWatch>;
}

/**
 * Runs Turnqueue turns on OpenAI Codex through `codex app-server` (JSON-RPC over stdio).
 *
 * One Codex thread per Turnqueue thread, started on its first dispatch; its id is stored
 * with the Turnqueue thread (`turn.session`) and comes back on every dispatch, so after a
 * restart (of this runtime or of Codex) the thread is resumed, not started again.
 *
 * A turn is reported started when the model first works on it: a failure before that (rate
 * limit, unreachable model, unknown model) is a start failure, retryable when it passes
 * with time. A crash of Codex fails what it was running (retryably when not yet started);
 * the next dispatch starts Codex again and resumes the thread.
 */
export function codexAdapter(options: CodexAdapterOptions): AgentAdapter {
  // What a turn may carry: Codex takes a model and a reasoning effort per turn.
  const takes = { name: "codex", options: ["model", "effort"], maxAttachmentBytes: options.maxAttachmentBytes ?? DEFAULT_MAX_ATTACHMENT_BYTES };
  const sandbox: SandboxMode = options.approve === "all" ? "workspace-write" : "read-only";
  const agentProcess = new AgentProcess<CodexProcess>(
    { name: "codex app-server", command: options.command ?? "codex", args: ["app-server"], cwd: options.cwd, env: options.env, onStderr: options.onStderr },
    async ({ child, exit }) => {
      const proc: CodexProcess = {
        threads: new Map(),
        turns: new Map(),
        starting: new Map(),
        rpc: new JsonlRpc(child.stdout, child.stdin, {
          onNotification: (method, params) => notified(proc, method, params),
          onRequest: (method, params) => answer(method, params),
        }),
      };
      void exit.then((why) => {
        const error = new RpcClosedError(why);
        proc.rpc.close(error);
        for (const watch of [...proc.turns.values(), ...proc.starting.values()]) watch.fail(error);
      });
      const init: InitializeParams = { clientInfo: { name: "turnqueue", title: "Turnqueue", version: "0.1.0" }, capabilities: null };
      await proc.rpc.request("initialize", init);
      proc.rpc.notify("initialized");
      return proc;
    },
  );
  const codex = () => agentProcess.get();

  function notified(proc: CodexProcess, method: string, params: unknown) {
    switch (method) {
      case "item/started": {
        // Every tool the model calls shows as an item, but for one Codex does not have: it
        // answers the model itself and tells nothing, so a response made only of such a call
        // is no sign here (its token count is none either: Codex resends the thread's count
        // with a rate limit's headers, so a refused first request shows one too).
        const p = params as ItemStartedNotification;
        if (p.item.type !== "userMessage" && p.item.type !== "hookPrompt") watchOf(proc, p.threadId, p.turnId)?.markWorking();
        break;
      }
      case "item/agentMessage/delta":
      case "item/reasoning/textDelta":
      case "item/reasoning/summaryTextDelta": {
        const p = params as { threadId: string; turnId: string };
        watchOf(proc, p.threadId, p.turnId)?.markWorking();
        break;
      }
      case "error": {
        const p = params as ErrorNotification;
        const watch = watchOf(proc, p.threadId, p.turnId);
        if (watch) watch.lastError = p;
        break;
      }
      case "account/rateLimits/updated": {
        // The account's limits, not one turn's: every turn in flight here is under them.
        const { rateLimits } = params as AccountRateLimitsUpdatedNotification;
        for (const watch of [...proc.turns.values(), ...proc.starting.values()]) watch.rateLimits = mergeRateLimits(watch.rateLimits, rateLimits);
        break;
      }
      case "turn/completed": {
        const p = params as TurnCompletedNotification;
        const watch = watchOf(proc, p.threadId, p.turn.id);
        if (p.turn.status === "completed") watch?.markWorking();
        watch?.complete(p.turn);
        break;
      }
    }
  }

  function watchOf(proc: CodexProcess, threadId: string, turnId: string): TurnWatch | undefined {
    return proc.turns.get(turnId) ?? proc.starting.get(threadId);
  }

  /** Codex's questions to its client: permissions by policy, anything else refused at once. */
  async function answer(method: string, params: unknown): Promise<unknown> {
    switch (method) {
      case "item/commandExecution/requestApproval":
        return { decision: allows(options.approve, "execute") ? "accept" : "decline" };
      case "item/fileChange/requestApproval":
        return { decision: allows(options.approve, "edit") ? "accept" : "decline" };
      case "execCommandApproval":
        return { decision: allows(options.approve, "execute") ? "approved" : "denied" };
      case "applyPatchApproval":
        return { decision: allows(options.approve, "edit") ? "approved" : "denied" };
      default:
        throw new Error(`turnqueue does not answer ${method}`);
    }
  }

  /** The Codex thread of a Turnqueue thread: loaded here, resumed from the dispatch's id, or new. */
  async function threadFor(proc: CodexProcess, turn: Turn): Promise<string> {
    const { threadId, runtimeSessionId } = turn.dispatch;
    const loaded = proc.threads.get(threadId);
    if (loaded) return loaded;
    const settings = { cwd: options.cwd, approvalPolicy: "on-request", sandbox } as const;
    let codexThreadId: string;
    if (runtimeSessionId) {
      const params: ThreadResumeParams = { threadId: runtimeSessionId, ...settings, excludeTurns: true };
      codexThreadId = (await proc.rpc.request<ThreadResumeResponse>("thread/resume", params)).thread.id;
    } else {
      const params: ThreadStartParams = { ...settings };
      codexThreadId = (await proc.rpc.request<ThreadStartResponse>("thread/start", params)).thread.id;
    }
    proc.threads.set(threadId, codexThreadId);
    if (codexThreadId !== runtimeSessionId) await turn.session(codexThreadId);
    return codexThreadId;
  }

  async function onTurn(turn: Turn) {
    const { dispatch } = turn;
    checkDispatchInput(dispatch, takes);
    let proc: CodexProcess;
    let codexThreadId: string;
    try {
      proc = await codex();
      codexThreadId = await threadFor(proc, turn);
    } catch (error) {
      throw asStartError(error);
    }
    const watch = watchTurn();
    proc.starting.set(codexThreadId, watch);
    let codexTurnId: string;
    try {
      const params: TurnStartParams = {
        threadId: codexThreadId,
        clientUserMessageId: dispatch.message.messageId,
        input: inputOf(dispatch),
        ...turnSettings(dispatch),
      };
      codexTurnId = (await proc.rpc.request<TurnStartResponse>("turn/start", params)).turn.id;
      proc.turns.set(codexTurnId, watch);
    } catch (error) {
      throw asStartError(error);
    } finally {
      proc.starting.delete(codexThreadId);
    }
    try {
      // Started for Turnqueue once the model works on it; a turn that ends before that never started.
      const first = await Promise.race([watch.working.then(() => null), watch.completed]);
      if (first && first.status !== "completed") throw startFailure(first, watch.lastError, watch.rateLimits);
      await turn.start(codexTurnId);
      const interrupt = () =>
        void proc.rpc.request("turn/interrupt", { threadId: codexThreadId, turnId: codexTurnId } satisfies TurnInterruptParams).catch(() => {});
      if (turn.interrupt.aborted) interrupt();
      else turn.interrupt.addEventListener("abort", interrupt, { once: true });
      const ended = await watch.completed.catch((error: Error) => ({ status: "failed" as const, error: { message: error.message, codexErrorInfo: null } }));
      // Codex told of the account's limit used up while the turn ran (the provider's limit
      // headers): the next turn would only fail, so the queue holds until the reset, by itself.
      const reset = watch.rateLimits ? resetOf(watch.rateLimits) : undefined;
      if (reset && reset.getTime() > Date.now()) {
        await turn.rateLimited(reset, `codex: ${ended.error?.message ?? "the account's rate limit is used up"}`);
      }
      if (ended.status === "completed") return { outcome: "completed" as const };
      if (ended.status === "interrupted" || turn.interrupt.aborted) return { outcome: "interrupted" as const };
      return { outcome: "failed" as const, error: ended.error?.message ?? "the Codex turn failed" };
    } finally {
      proc.turns.delete(codexTurnId);
    }
  }

  async function onSteer(dispatch: Dispatch) {
    checkDispatchInput(dispatch, takes);
    const proc = await codex();
    const codexThreadId = proc.threads.get(dispatch.threadId);
    if (!codexThreadId) throw new Error("no Codex thread is running for this thread here");
    const params: TurnSteerParams = {
      threadId: codexThreadId,
      clientUserMessageId: dispatch.message.messageId,
      input: inputOf(dispatch),
      expectedTurnId: dispatch.expectedTurnId!,
    };
    await proc.rpc.request("turn/steer", params);
  }

  return {
    onTurn,
    onSteer,
    // Codex threads cost nothing until used: every Turnqueue thread has a ready session.
    autoReady: true,
    close: () => agentProcess.stop(),
  };

  /** An error before the turn started: Codex gone or crashed is worth another try, a refusal is not. */
  function asStartError(error: unknown): Error {
    if (error instanceof TurnStartError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new TurnStartError(`codex: ${message}`, { retryable: !agentProcess.stopped && error instanceof RpcClosedError });
  }
}

function startFailure(turn: CodexTurn, last: ErrorNotification | null, rateLimits: RateLimitSnapshot | null): TurnStartError {
  const error = turn.error ?? last?.error ?? null;
  const kind = errorKind(error?.codexErrorInfo);
  const status = httpStatusOf(error?.codexErrorInfo);
  // Without a structured kind (none, or `other`: a dropped stream, an unreachable model), the text tells.
  const retryable = status !== null ? transientStatus(status)
    : kind !== null && kind !== "other" ? TRANSIENT.has(kind)
    : looksTransient(error?.message ?? "");
  const limited = status === 429 || kind === "usageLimitExceeded" || kind === "rateLimitExceeded";
  const retryAt = limited && rateLimits ? resetOf(rateLimits) : undefined;
  return new TurnStartError(`codex: ${error?.message ?? `the turn ${turn.status}`}${kind ? ` (${kind})` : ""}`, { retryable, retryAt });
}

/**
 * When an exhausted account limit resets, as Codex reported it (`account/rateLimits/updated`,
 * from the provider's rate-limit headers): the latest reset among the windows used up, since
 * the turn cannot run before all of them reset. Nothing when no window is used up: a 429
 * without a reset time gets the queue's own backoff, not an invented time.
 */
function resetOf(limits: RateLimitSnapshot): Date | undefined {
  const resets = [limits.primary, limits.secondary]
    .flatMap((w) => (w && w.usedPercent >= 100 && w.resetsAt ? [w.resetsAt] : []))
    .concat(limits.individualLimit && limits.individualLimit.remainingPercent <= 0 ? [limits.individualLimit.resetsAt] : []);
  return resets.length > 0 ? new Date(Math.max(...resets) * 1000) : undefined;
}

/** Codex's rate-limit updates are sparse: a window left out keeps its last known value. */
function mergeRateLimits(known: RateLimitSnapshot | null, update: RateLimitSnapshot): RateLimitSnapshot {
  if (!known) return update;
  return {
    ...update,
    primary: update.primary ?? known.primary,
    secondary: update.secondary ?? known.secondary,
    individualLimit: update.individualLimit ?? known.individualLimit,
  };
}

/**
 * The message as Codex input: its text, images as image input (by URL, or a local file),
 * and any other attachment named with its path or URL in a text part, as Codex's own
 * composer puts a file in a prompt. (Codex's `mention` input is for apps and plugins: a
 * file given as one never reaches the model.)
 */
function inputOf(dispatch: Dispatch): UserInput[] {
  const input: UserInput[] = [{ type: "text", text: dispatch.message.text, text_elements: [] }];
  for (const a of dispatch.message.attachments) {
    if (!a.url) continue;
    const local = a.url.replace(/^file:\/\//, "");
    if (a.mimeType?.startsWith("image/")) input.push(/^https?:|^data:/.test(a.url) ? { type: "image", url: a.url } : { type: "localImage", path: local });
    else input.push({ type: "text", text: `Attached file "${a.name}": ${local}`, text_elements: [] });
  }
  return input;
}

/** The options snapshotted at enqueue that Codex takes per turn: model and reasoning effort. */
function turnSettings(dispatch: Dispatch): Pick<TurnStartParams, "model" | "effort"> {
  const { model, effort } = dispatch.options as { model?: string; effort?: unknown };
  return {
    ...(model ? { model } : {}),
    ...(typeof effort === "string" && effort ? { effort } : {}),
  };
}
