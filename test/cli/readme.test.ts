import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, repoRoot } from "../server/process.js";
import { readmeBlocks } from "../support/readme.js";
import { startTestServer, type TestServer } from "../support/server.js";

const exec = promisify(execFile);

/** The ```sh block of README.md's "Operate it from a terminal" section. */
async function readmeBlock(): Promise<string> {
  const blocks = await readmeBlocks("Operate it from a terminal", "sh");
  expect(blocks).toHaveLength(1);
  return blocks[0]!;
}

describe('README "Operate it from a terminal" runs as written (real CLI, real server)', { timeout: 900_000 }, () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it("arranges a queue from the shell and prints it, the thread list and the events", async () => {
    const block = await readmeBlock();
    // `turnqueue` is the command from the sources; the script stops at its first failure.
    const script = `set -euo pipefail\nturnqueue() { "${process.execPath}" --import tsx "${path.join(repoRoot, "src/cli.ts")}" "$@"; }\n${block}`;
    const env = cleanEnv({ TURNQUEUE_URL: server.url, TURNQUEUE_TOKEN: await server.token("user", "readme-cli") });
    const { stdout } = await exec("bash", ["-c", script], { cwd: repoRoot, env });
    const lines = stdout.split("\n");
    const show = lines.findIndex((line) => /\tNightly chores\tv\d+\tsession unknown\tqueue paused \(user\), 2 item\(s\)$/.test(line));
    expect(show, stdout).toBeGreaterThan(-1);
    expect(lines[show + 1]).toMatch(/^1\.\tqi_\S+\tpending\t"Fix the lint errors"$/);
    expect(lines[show + 2]).toMatch(/^2\.\tqi_\S+\tpending\t"Run the tests, then push"$/);
    expect(stdout).toMatch(/\t2 queued\tsession unknown\tNightly chores/);
    expect(stdout).toMatch(/\tv1\tthread\.created\t/);
    expect(stdout).toMatch(/\tqueue\.resumed\t/);
  });
});
