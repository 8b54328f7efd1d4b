import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const cli = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));

/** Environment for a child: none of the developer's TURNQUEUE_* / DATABASE_URL settings leak in. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("TURNQUEUE_") && k !== "DATABASE_URL" && k !== "REDIS_URL"),
  );
  return { ...env, TURNQUEUE_LOG_LEVEL: "warn", ...extra };
}

export interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the match once stdout matches, rejects if the process exits first. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; detached?: boolean } = {}): Running {
  const child = spawn(command, args, {
    cwd: repoRoot,
    env: options.env ?? cleanEnv(),
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.detached ?? false,
  });
  let out = "";
  let err = "";
  const listeners = new Set<() => void>();
  child.stdout!.on("data", (chunk: Buffer) => {
    out += chunk.toString();
    for (const l of listeners) l();
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = out.match(pattern);
          if (!match) return;
          listeners.delete(check);
          resolve(match);
        };
        listeners.add(check);
        check();
        void exited.then(({ code, signal }) => {
          if (listeners.has(check)) reject(new Error(`exited (${code ?? signal}) before printing ${pattern}\nstdout:\n${out}\nstderr:\n${err}`));
        });
      });
    },
  };
}

/**
 * The `turnqueue` command from the sources (tsx's loader inside the one node process, so
 * signals reach it directly). test/package runs the built command as installed.
 */
export const turnqueue = (args: string[], env?: NodeJS.ProcessEnv) => run(process.execPath, ["--import", "tsx", cli, ...args], { env });

/** Runs the command to its end. */
export async function turnqueueOnce(args: string[], env?: NodeJS.ProcessEnv) {
  const p = turnqueue(args, env);
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

/** Starts `turnqueue serve` and reads the URL and token it prints. */
export async function serve(args: string[], env?: NodeJS.ProcessEnv) {
  const p = turnqueue(["serve", "--port", "0", ...args], env);
  const [, url] = await p.waitFor(/serving (http:\/\/\S+)/);
  const [, token] = await p.waitFor(/user token \(workspace "local"[^)]*\): (\S+)/);
  return { ...p, url, token };
}
