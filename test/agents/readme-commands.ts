import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { expect } from "vitest";
import { AGENT_WAIT_MS, startAgentHarness, turnsIn, type AgentHarness } from "./harness.js";
import { eventually } from "../support/poll.js";
import { readmeBlocks } from "../support/readme.js";

const root = path.resolve(import.meta.dirname, "../..");

/** The `turnqueue agent …` lines of README.md's "Drive a real agent" section. */
export async function readmeAgentCommands(): Promise<string[]> {
  const blocks = await readmeBlocks("Drive a real agent", "sh");
  return blocks.flatMap((b) => b.split("\n")).filter((l) => l.startsWith("turnqueue agent "));
}

/**
 * Runs one README command as written, with only what is the reader's own swapped in: the
 * server's address, a working directory, the token (as `$AGENT_TOKEN`), and an environment
 * whose model is the scripted server. Then one queued item must complete through it.
 */
export async function runReadmeCommand(command: string, env: (h: AgentHarness) => NodeJS.ProcessEnv, cwd: string): Promise<void> {
  const h = await startAgentHarness();
  const line = command
    .replace(/^turnqueue /, `${path.join(root, "bin/turnqueue.mjs")} `)
    .replaceAll("~/src/app", cwd)
    .replaceAll("http://127.0.0.1:4780", h.server.url);
  let child: ChildProcess | null = null;
  let output = "";
  try {
    child = spawn("sh", ["-c", `exec ${line}`], {
      cwd: root,
      env: { ...env(h), AGENT_TOKEN: h.agentToken, PATH: `${path.join(root, "node_modules/.bin")}:${process.env.PATH}` },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (c) => (output += c));
    child.stderr!.on("data", (c) => (output += c));
    const threadId = await h.thread();
    await h.add(threadId, "hello from the README");
    await eventually(async () => expect(turnsIn(await h.events(threadId))[0]?.outcome, output.slice(-2000)).toBe("completed"), AGENT_WAIT_MS);
  } finally {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    await h.close();
  }
}
