import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { seedPglite } from "../support/server.js";
import { cleanEnv, repoRoot, run } from "../server/process.js";
import { connect } from "../support/clients.js";
import { readmeBlocks } from "../support/readme.js";

vi.setConfig({ testTimeout: 180_000, hookTimeout: 60_000 });

/** The fenced blocks of one language in README.md's "Run it in production" section, in order. */
const examples = (lang: string) => readmeBlocks("Run it in production", lang);

const words = (line: string) => line.split("#")[0]!.trim().split(/\s+/);

describe('README "Run it in production" runs as written (port and data directory swapped for free ones)', () => {
  let dataDir: string;
  let scratch: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-readme-operate-"));
    await seedPglite(dataDir);
    // Inside the repository (.tmp/ is gitignored), so the setup file's imports resolve to its packages.
    scratch = path.join(repoRoot, ".tmp", `operate-${process.pid}`);
    await mkdir(scratch, { recursive: true });
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  });

  it("has the sections' examples: one sh, one js", async () => {
    expect(await examples("sh")).toHaveLength(1);
    expect(await examples("js")).toHaveLength(1);
  });

  it("the supervisor's command serves, and its SIGTERM stops it with exit 0; with the setup file loaded, commands are traced", async () => {
    const [command] = await examples("sh");
    const args = words(command!).map((w) => (w === "4780" ? "0" : w === "/var/lib/turnqueue" ? dataDir : w));
    expect(args.slice(0, 3)).toEqual(["node", "bin/turnqueue.mjs", "serve"]);

    // The js example is the setup file its comment names, loaded as the comment says.
    const [setup] = await examples("js");
    const file = path.join(scratch, "otel-setup.mjs");
    await writeFile(file, setup!);
    const how = setup!.split("\n")[0]!.match(/— (node --import \S+ bin\/turnqueue\.mjs serve)$/)![1]!;
    expect(how).toBe("node --import ./otel-setup.mjs bin/turnqueue.mjs serve");

    const server = run("node", ["--import", file, ...args.slice(1)], { env: cleanEnv() });
    try {
      const [, url] = await server.waitFor(/serving (http:\/\/\S+)/);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/); // 0.0.0.0 is announced as loopback
      const [, token] = await server.waitFor(/user token \(workspace "local"[^)]*\): (\S+)/);
      await connect({ url: url! }, token).thread.create.mutate({ title: "traced by the README's setup" });
      await server.waitFor(/name: 'command thread\.create'/);
    } finally {
      server.child.kill("SIGTERM");
    }
    expect(await server.exited).toEqual({ code: 0, signal: null });
  });
});
