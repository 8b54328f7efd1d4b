import { abortableSleep, runAgent, TurnStartError, type Agent, type Dispatch, type RunAgentOptions } from "./agent.js";

export interface EchoAgentOptions {
  url: string;
  /** An `agent` token of the workspace to serve. */
  token: string;
  /** How long each turn "works" before it completes. */
  delayMs?: number;
  /** Share of turns (0..1) whose start fails, retryably, to show retries and backoff. */
  failureRate?: number;
  /** Where the echoes go; stdout by default. */
  echo?: (line: string, dispatch: Dispatch) => void;
  /** Called as each turn's handler begins, before anything is reported (to count runs). */
  onRun?: (dispatch: Dispatch) => void;
  onError?: (error: unknown) => void;
  onConnection?: RunAgentOptions["onConnection"];
}

/**
 * A real agent runtime on the agent SDK whose "model" echoes the message back: it keeps a
 * ready session on every thread of its workspace, starts each dispatched turn, works for
 * `delayMs`, prints the text and completes. Steers are echoed into the running turn; an
 * interrupt ends the turn at once.
 */
export function startEchoAgent(options: EchoAgentOptions): Agent {
  const { delayMs = 500, failureRate = 0 } = options;
  const echo = options.echo ?? ((line: string) => process.stdout.write(`${line}\n`));
  return runAgent({
    url: options.url,
    token: options.token,
    autoReady: true,
    onError: options.onError,
    onConnection: options.onConnection,
    async onTurn(turn) {
      options.onRun?.(turn.dispatch);
      if (Math.random() < failureRate) throw new TurnStartError("echo: simulated start failure", { retryable: true });
      const turnId = await turn.start();
      const stop = AbortSignal.any([turn.signal, turn.interrupt]);
      const worked = await abortableSleep(delayMs, stop).then(() => true, () => false);
      if (!worked) return { outcome: "interrupted" };
      echo(`[${turn.dispatch.threadId}] turn ${turnId}: ${turn.dispatch.message.text}`, turn.dispatch);
      return { outcome: "completed" };
    },
    async onSteer(dispatch) {
      echo(`[${dispatch.threadId}] steer into ${dispatch.expectedTurnId}: ${dispatch.message.text}`, dispatch);
    },
  });
}
