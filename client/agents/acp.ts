import { AgentProcess } from "./child.js";
import { checkDispatchInput, DEFAULT_MAX_ATTACHMENT_BYTES } from "./dispatch-input.js";
import { Readable, Writable } from "node:stream";
import * as acp from "@agentclientprotocol/sdk";
import { TurnStartError, type AgentAdapter, type Dispatch, type Turn, type TurnOutcome } from "../agent.js";
import { allows, type ApprovePolicy, type PermissionKind } from "./approval.js";
import { looksTransient } from "./transient.js";

export interface AcpAdapterOptions {
  /** The agent's command line, split on spaces, e.g. "npx @zed-industries/claude-agent-acp". */
  command: string;
  /** The directory the agent works in (its sessions' cwd). */
  cwd: string;
  approve: ApprovePolicy;
  /** Largest attachment a turn may carry, in bytes (default 20 MiB); more fails the item. */
  maxAttachmentBytes?: number;
  /** The child's environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** The agent's own log lines (stderr); dropped by default. */
  onStderr?: (line: string) => void;
}

/** One session's turn in flight: the first sign the model works on it. */
interface PromptWatch {
  /** A session update of the prompt's, by kind. */
  seen(kind: acp.SessionUpdate["sessionUpdate"]): void;
  /** Resolves at the model's first sign of work on the prompt (its turn has really started). */
  working: Promise<void>;
}

interface AcpProcess {
  connection: acp.ClientConnection;
  capabilities: acp.AgentCapabilities | undefined;
  /** Turnqueue thread id → ACP session id, for sessions open in this process. */
  sessions: Map<string, string>;
  /** ACP session id → its settings (model, mode, …) and their values, as the agent last told. */
  config: Map<string, acp.SessionConfigOption[]>;
  /** ACP session id → its prompt in flight. */
  prompts: Map<string, PromptWatch>;
}

/**
 * Runs Turnqueue turns on any Agent Client Protocol agent (Claude Code through
 * claude-agent-acp, Codex through codex-acp, …) with the official ACP client library.
 *
 * One ACP session per Turnqueue thread (`session/new`, or `session/load` with the stored
 * `runtimeSessionId` when the agent can load sessions), one `session/prompt` per turn,
 * `session/cancel` for an interrupt; the prompt's stop reason is the turn's outcome. The
 * item's model, mode and effort set the session's settings of those categories first. ACP
 * has no way to add a message to a running prompt, so steers are refused with that reason.
 * Permission requests are answered by the approve policy at once.
 */
export function acpAdapter(options: AcpAdapterOptions): AgentAdapter {
  // What a turn may carry: the options that are session settings in ACP (whether this agent
  // offers them is known once its session is open).
  const takes = { name: "this ACP agent", options: Object.keys(SETTINGS), maxAttachmentBytes: options.maxAttachmentBytes ?? DEFAULT_MAX_ATTACHMENT_BYTES };
  const [command, ...args] = options.command.trim().split(/\s+/);
  // Started where the runtime was (as a shell would, so `npx <package>` finds this
  // project's copy); the agent works in `options.cwd`, which every session names.
  const agentProcess = new AgentProcess<AcpProcess>(
    { name: "the ACP agent", command: command!, args, env: options.env, onStderr: options.onStderr },
    async ({ child, exit }) => {
      const sessions = new Map<string, string>();
      const prompts = new Map<string, PromptWatch>();
      const config = new Map<string, acp.SessionConfigOption[]>();
      const app = acp
        .client({ name: "turnqueue" })
        .onRequest(acp.methods.client.session.requestPermission, ({ params }) => permission(params))
        .onNotification(acp.methods.client.session.update, ({ params }) => {
          prompts.get(params.sessionId)?.seen(params.update.sessionUpdate);
          if (params.update.sessionUpdate === "config_option_update") config.set(params.sessionId, params.update.configOptions);
        });
      const connection = app.connect(acp.ndJsonStream(Writable.toWeb(child.stdin), Readable.toWeb(child.stdout) as ReadableStream<Uint8Array>));
      void exit.then((why) => connection.close(new Error(why)));
      const init = await connection.agent.request(acp.methods.agent.initialize, {
        protocolVersion: acp.PROTOCOL_VERSION,
        clientCapabilities: {},
      });
      return { connection, capabilities: init.agentCapabilities, sessions, prompts, config };
    },
  );
  const agent = () => agentProcess.get();

  function permission(params: acp.RequestPermissionRequest): acp.RequestPermissionResponse {
    const kind: PermissionKind = params.toolCall.kind === "read" || params.toolCall.kind === "search" ? "read"
      : params.toolCall.kind === "edit" || params.toolCall.kind === "delete" || params.toolCall.kind === "move" ? "edit"
      : params.toolCall.kind === "execute" ? "execute" : "other";
    const wanted = allows(options.approve, kind) ? ["allow_once", "allow_always"] : ["reject_once", "reject_always"];
    const option = params.options.find((o) => o.kind === wanted[0]) ?? params.options.find((o) => o.kind === wanted[1]);
    return option ? { outcome: { outcome: "selected", optionId: option.optionId } } : { outcome: { outcome: "cancelled" } };
  }

  async function sessionFor(proc: AcpProcess, turn: Turn): Promise<string> {
    const { threadId, runtimeSessionId } = turn.dispatch;
    const open = proc.sessions.get(threadId);
    if (open) return open;
    let sessionId: string;
    let configOptions: acp.SessionConfigOption[] | null | undefined;
    if (runtimeSessionId && proc.capabilities?.loadSession) {
      ({ configOptions } = await proc.connection.agent.request(acp.methods.agent.session.load, { sessionId: runtimeSessionId, cwd: options.cwd, mcpServers: [] }));
      sessionId = runtimeSessionId;
    } else {
      ({ sessionId, configOptions } = await proc.connection.agent.request(acp.methods.agent.session.new, { cwd: options.cwd, mcpServers: [] }));
    }
    proc.config.set(sessionId, configOptions ?? []);
    proc.sessions.set(threadId, sessionId);
    if (sessionId !== runtimeSessionId) await turn.session(sessionId);
    return sessionId;
  }

  /**
   * Sets the session's model, mode and effort to the item's options, through the settings the
   * agent offers (`session/set_config_option`, by category). An option the agent has no setting
   * for, or a value it does not offer, refuses the turn with what it does offer.
   */
  async function applyOptions(proc: AcpProcess, sessionId: string, dispatch: Dispatch): Promise<void> {
    for (const [name, category] of Object.entries(SETTINGS)) {
      const wanted = (dispatch.options as Record<string, unknown>)[name];
      if (wanted === undefined || wanted === null) continue;
      const setting = proc.config.get(sessionId)?.find((o) => o.category === category && o.type === "select");
      if (!setting || setting.type !== "select") throw new TurnStartError(`this ACP agent has no ${name} setting`, { retryable: false });
      const offered = setting.options.flatMap((o) => ("group" in o ? o.options : [o])).map((o) => o.value);
      if (!offered.includes(String(wanted))) {
        throw new TurnStartError(`this ACP agent cannot take the ${name} "${String(wanted)}" (it offers ${offered.join(", ")})`, { retryable: false });
      }
      if (setting.currentValue === String(wanted)) continue;
      const { configOptions } = await proc.connection.agent.request(acp.methods.agent.session.setConfigOption, { sessionId, configId: setting.id, value: String(wanted) });
      proc.config.set(sessionId, configOptions);
    }
  }

  async function onTurn(turn: Turn): Promise<{ outcome: TurnOutcome; error?: string }> {
    checkDispatchInput(turn.dispatch, takes);
    let proc: AcpProcess;
    let sessionId: string;
    try {
      proc = await agent();
      sessionId = await sessionFor(proc, turn);
      await applyOptions(proc, sessionId, turn.dispatch);
    } catch (error) {
      throw startError(error);
    }
    const watch = watchPrompt();
    proc.prompts.set(sessionId, watch);
    const cancel = () => void proc.connection.agent.notify(acp.methods.agent.session.cancel, { sessionId }).catch(() => {});
    turn.interrupt.addEventListener("abort", cancel, { once: true });
    try {
      const prompt = proc.connection.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: promptOf(turn.dispatch) });
      prompt.catch(() => {});
      // Started for Turnqueue once the model works on it: a prompt refused before that never started.
      const first = await Promise.race([watch.working.then(() => null), prompt.then((r) => r, (e: unknown) => ({ error: e }))]);
      if (first && "error" in first) throw startError(first.error);
      await turn.start();
      const { stopReason } = await prompt.catch((error: unknown) => {
        throw new Error(messageOf(error));
      });
      if (stopReason === "cancelled" || turn.interrupt.aborted) return { outcome: "interrupted" };
      if (stopReason === "refusal") return { outcome: "failed", error: "the agent refused the prompt" };
      return { outcome: "completed" };
    } finally {
      turn.interrupt.removeEventListener("abort", cancel);
      proc.prompts.delete(sessionId);
    }
  }

  function startError(error: unknown): TurnStartError {
    if (error instanceof TurnStartError) return error;
    const message = messageOf(error);
    const crashed = !agentProcess.running; // the process went away under us
    return new TurnStartError(`acp: ${message}`, { retryable: !agentProcess.stopped && (crashed || looksTransient(message)) });
  }

  return {
    onTurn,
    // ACP has no way to add a message to a running prompt (a second session/prompt is a turn
    // of its own, and cancelling to resend would lose the running work): a steer is refused
    // with that reason, the item fails where it is and the queue holds for the user.
    async onSteer() {
      throw new Error("an ACP agent cannot take a message into its running prompt (the protocol has no steer): queue it as the next turn instead");
    },
    autoReady: true,
    close: () => agentProcess.stop(),
  };
}

/** Turnqueue options → the category of the ACP session setting that holds them. */
const SETTINGS = { model: "model", mode: "mode", effort: "thought_level" } as const satisfies Record<string, acp.SessionConfigOptionCategory>;

/** Session updates that show the model working on the prompt (not echoes of the user's own message). */
const WORK = new Set<acp.SessionUpdate["sessionUpdate"]>(["agent_message_chunk", "agent_thought_chunk", "tool_call", "tool_call_update", "plan"]);

/**
 * When a prompt has started for Turnqueue. Thoughts, tool calls and plans are the model's
 * work at once; agent text only once more text (or other work) follows it. An agent sends
 * notices of its own as agent text before it asks the model — codex-acp forwards Codex's
 * warnings, one message each, as for a model Codex has no metadata for — and a rate limit
 * after such a notice is still a start failure, retried when it passes. The model's text
 * streams in many chunks, so its second one starts the turn; a whole answer in one chunk
 * starts it when the prompt ends. Two notices in a row would still count as a start.
 */
function watchPrompt(): PromptWatch {
  let markWorking!: () => void;
  const working = new Promise<void>((resolve) => (markWorking = resolve));
  let texts = 0;
  return {
    working,
    seen(kind) {
      if (!WORK.has(kind)) return;
      if (kind === "agent_message_chunk" && ++texts === 1) return;
      markWorking();
    },
  };
}

/** The message as ACP content: its text, then attachments as images or resource links. */
function promptOf(dispatch: Dispatch): acp.ContentBlock[] {
  const blocks: acp.ContentBlock[] = [{ type: "text", text: dispatch.message.text }];
  for (const a of dispatch.message.attachments) {
    if (!a.url) continue;
    blocks.push({ type: "resource_link", name: a.name, uri: a.url, ...(a.mimeType ? { mimeType: a.mimeType } : {}), ...(a.size ? { size: a.size } : {}) });
  }
  return blocks;
}

/**
 * An ACP error as a reason a person can read: agents put the cause in the error's data
 * (`details`; codex-acp: `message`), or in the message itself (claude-agent-acp).
 */
function messageOf(error: unknown): string {
  if (error instanceof Error) {
    const data = (error as { data?: unknown }).data as { details?: unknown; message?: unknown } | null | undefined;
    const detail = [data?.details, data?.message].filter((d) => d !== undefined && d !== null).map(String).join(" ");
    return detail ? `${error.message}: ${detail}` : error.message;
  }
  if (error && typeof error === "object" && "message" in error) return String((error as { message: unknown }).message);
  return String(error);
}
