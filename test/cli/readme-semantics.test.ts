import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, repoRoot } from "../server/process.js";
import { readmeBlocks } from "../support/readme.js";
import { startTestServer, type TestServer } from "../support/server.js";

const exec = promisify(execFile);

describe('README "Steer, interrupt, step: how an item goes" runs as written (real CLI, real server)', { timeout: 900_000 }, () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it("queues in step mode, an interrupt goes ahead of the queue, and status tells the message's place in line", async () => {
    const blocks = await readmeBlocks("Steer, interrupt, step: how an item goes", "sh");
    expect(blocks).toHaveLength(1);
    const script = `set -euo pipefail\nturnqueue() { "${process.execPath}" --import tsx "${path.join(repoRoot, "src/cli.ts")}" "$@"; }\n${blocks[0]}`;
    const env = cleanEnv({ TURNQUEUE_URL: server.url, TURNQUEUE_TOKEN: await server.token("user", "readme-semantics") });
    const { stdout } = await exec("bash", ["-c", script], { cwd: repoRoot, env });
    expect(stdout).toMatch(/^queued\tqi_\S+\t2$/m);
    const show = /^(\S+)\tRelease\tv\d+\tsession unknown\tqueue running, 2 item\(s\)$/m.exec(stdout);
    expect(show, stdout).not.toBeNull();
    const state = await server.services.engine.load(show![1]!);
    expect(state.mode).toBe("step");
    expect([...state.items.values()].map((i) => [i.text, i.delivery, i.author])).toEqual(
      expect.arrayContaining([
        ["Bump the version", "queue", { sub: "user" }],
        ["First update the changelog", "interrupt", { sub: "user", name: "Ana" }],
      ]),
    );
  });
});
