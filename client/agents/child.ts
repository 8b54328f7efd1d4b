import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { TurnStartError } from "../agent.js";

export interface AgentProcessOptions {
  command: string;
  args: readonly string[];
  /** Where it runs (default: where this process runs). */
  cwd?: string;
  /** Its environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Its log lines (stderr); dropped by default, but always read so it never blocks on a full pipe. */
  onStderr?: (line: string) => void;
  /** How errors name it when it exits: "codex app-server", "the ACP agent". */
  name: string;
}

/** A started agent process, handed to the protocol's handshake. */
export interface Spawned {
  child: ChildProcessWithoutNullStreams;
  /** Resolves with why when the process exits (or could not start): fail what it was running. */
  exit: Promise<string>;
}

/** How long a stopping agent gets between SIGTERM and SIGKILL. */
const STOP_GRACE_MS = 3_000;

/**
 * Agent commands are often wrappers: `codex-acp` from npm is a node script that runs the
 * native binary as its child, and a signal to the wrapper leaves that child running. So the
 * agent runs as the leader of a process group of its own (POSIX) and signals go to the whole
 * group. (Windows has no groups: the signal goes to the process we started.)
 */
const OWN_GROUP = process.platform !== "win32";

function signal(child: ChildProcessWithoutNullStreams, name: NodeJS.Signals) {
  if (OWN_GROUP && child.pid) {
    try {
      process.kill(-child.pid, name);
      return;
    } catch {
      // ESRCH: nothing of the group is left.
    }
  }
  child.kill(name);
}

/**
 * One agent process behind an adapter, speaking its protocol over stdio: started on first
 * use (`connect` speaks the protocol's handshake on it), and forgotten when it exits or
 * fails to start, so the next use starts it again. A command that cannot run at all fails
 * the turn for good (retrying would not find it either).
 */
export class AgentProcess<P> {
  private current: Promise<{ child: ChildProcessWithoutNullStreams; connected: P; exited: Promise<void> }> | null = null;
  private stopping = false;

  constructor(
    private readonly options: AgentProcessOptions,
    private readonly connect: (spawned: Spawned) => Promise<P>,
  ) {}

  /** The running process's connection, the process started first when none runs. */
  async get(): Promise<P> {
    return (await (this.current ??= this.start())).connected;
  }

  /** A process runs or is starting (it was not lost since the last `get`). */
  get running(): boolean {
    return this.current !== null;
  }

  /** `stop()` was called: a failure from now on is the shutdown's, not the agent's. */
  get stopped(): boolean {
    return this.stopping;
  }

  /** Ends the process: stdin closed and SIGTERM, SIGKILL if it lingers. */
  async stop(): Promise<void> {
    this.stopping = true;
    const running = await this.current?.catch(() => null);
    if (!running) return;
    running.child.stdin.end();
    const killer = setTimeout(() => signal(running.child, "SIGKILL"), STOP_GRACE_MS);
    signal(running.child, "SIGTERM");
    await running.exited;
    clearTimeout(killer);
  }

  private start() {
    const { command, args, cwd, env, onStderr, name } = this.options;
    const child = spawn(command, args, { ...(cwd && { cwd }), env: env ?? process.env, stdio: ["pipe", "pipe", "pipe"], detached: OWN_GROUP });
    child.stdin.on("error", () => {}); // a write after exit: the exit is what reports it
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      for (const line of chunk.split("\n")) if (line.trim()) onStderr?.(line);
    });
    let gone!: (why: string) => void;
    const exit = new Promise<string>((resolve) => (gone = resolve));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const started = new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", (error) => {
        forget();
        gone(error.message);
        reject(new TurnStartError(`cannot run ${command}: ${error.message}`, { retryable: false }));
      });
    });
    child.once("exit", (code, killedBy) => {
      forget();
      // What the process leaves behind in its group (a wrapper's real agent) goes with it:
      // the next use starts a new one.
      signal(child, "SIGKILL");
      gone(`${name} exited (${killedBy ?? `code ${code}`})`);
    });
    const ready = started.then(async () => ({ child, connected: await this.connect({ child, exit }), exited }));
    const forget = () => {
      if (this.current === ready) this.current = null;
    };
    ready.catch(forget);
    return ready;
  }
}
