import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const tsx = path.join(root, "node_modules/.bin/tsx");

/** The ```ts blocks of README.md's "Use it from your app" section, in order. */
async function readmeExamples(): Promise<string[]> {
  const readme = await readFile(path.join(root, "README.md"), "utf8");
  const start = readme.indexOf("## Use it from your app");
  expect(start, 'README.md has a "Use it from your app" section').toBeGreaterThan(-1);
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
}

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function run(file: string, env: Record<string, string>): Run {
  let output = "";
  const child = spawn(tsx, [file], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

// Two tsx processes start from scratch here: a roomy ceiling for a loaded machine.
describe('README "Use it from your app" runs as written (real server, the package\'s own entry points)', { timeout: 120_000 }, () => {
  let server: TestServer;
  // Inside the repository (.tmp/ is gitignored), so `from "turnqueue"` resolves to this package.
  let dir: string;
  let agent: Run | undefined;

  beforeAll(async () => {
    server = await startTestServer();
    await mkdir(path.join(root, ".tmp"), { recursive: true });
    dir = await mkdtemp(path.join(root, ".tmp", "readme-"));
  });
  afterAll(async () => {
    if (agent && agent.child.exitCode === null) {
      agent.child.kill("SIGKILL");
      await agent.exited;
    }
    await rm(dir, { recursive: true, force: true });
    await server?.close();
  });

  it("the user-side example arranges a queue and the agent-side example receives it in that order", async () => {
    const [user, agentSide, ...rest] = await readmeExamples();
    expect(rest).toEqual([]);
    expect(user).toContain('from "turnqueue"');
    expect(agentSide).toContain('from "turnqueue/agent"');
    await writeFile(path.join(dir, "user.ts"), user);
    await writeFile(path.join(dir, "agent.ts"), agentSide);
    const env = {
      TURNQUEUE_URL: server.url,
      TURNQUEUE_TOKEN: await server.token("user", "readme", "reader"),
      TURNQUEUE_AGENT_TOKEN: await server.token("agent", "readme", "runtime"),
    };

    agent = run(path.join(dir, "agent.ts"), env);
    const userRun = run(path.join(dir, "user.ts"), env);
    expect(await userRun.exited, userRun.output()).toBe(0);
    // The user's device saw its arrangement live: moved first, edited text.
    expect(userRun.output().replace(/\s+/g, " ")).toContain("'pending: Fix the lint errors', 'pending: Run the tests, then push'");

    await vi.waitFor(() => expect(agent!.output()).toMatch(/turn .+: Run the tests, then push/), { timeout: 20_000, interval: 50 });
    const turns = agent.output().split("\n").filter((line) => line.startsWith("turn "));
    expect(turns.map((line) => line.replace(/^turn [^:]+: /, ""))).toEqual(["Fix the lint errors", "Run the tests, then push"]);

    agent.child.kill("SIGTERM");
    expect(await agent.exited, agent.output()).toBe(0);
  });
});
