import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { settings } from "../../src/config.js";
import { createTestDatabase, hasPostgres } from "../support/postgres.js";
import { seedPglite } from "../support/server.js";
import { cleanEnv, run, serve, turnqueueOnce } from "./process.js";
import { connect, codeOf } from "../support/clients.js";
import { httpCall } from "../support/trpc-raw.js";

const tempDir = () => mkdtemp(path.join(os.tmpdir(), "turnqueue-cli-"));

// Every test here starts real processes (tsx, and PGlite's start-up): on two cores shared
// with other suites that takes minutes, not seconds. Limits, not measurements.
vi.setConfig({ testTimeout: 180_000, hookTimeout: 240_000 });

describe("turnqueue --help", () => {
  it("lists the commands", async () => {
    const { code, stdout } = await turnqueueOnce(["--help"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/serve/);
    expect(stdout).toMatch(/token/);
  });

  it("documents every setting of serve with its flag and environment variable", async () => {
    const { code, stdout } = await turnqueueOnce(["serve", "--help"]);
    expect(code).toBe(0);
    for (const setting of Object.values(settings)) {
      expect(stdout).toContain(setting.flag.split(" ")[0]);
      expect(stdout).toContain(setting.env);
    }
  });
});

describe("turnqueue serve refuses bad settings before starting anything", () => {
  it("names the flag and variable of each bad value and exits 2", async () => {
    const dataDir = await tempDir();
    const { code, stdout, stderr } = await turnqueueOnce(
      ["serve", "--port", "70000", "--data-dir", dataDir],
      cleanEnv({ TURNQUEUE_DISPATCH_TIMEOUT_MS: "soon", DATABASE_URL: "mysql://x" }),
    );
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain("--port / TURNQUEUE_PORT");
    expect(stderr).toContain("--dispatch-timeout-ms / TURNQUEUE_DISPATCH_TIMEOUT_MS");
    expect(stderr).toContain("--database-url / DATABASE_URL: must be a postgresql:// URL");
    await rm(dataDir, { recursive: true, force: true });
  });
});

describe("turnqueue serve on the embedded database, then turnqueue token", () => {
  let dataDir: string;
  let server: Awaited<ReturnType<typeof serve>>;

  beforeAll(async () => {
    dataDir = await tempDir();
    // A migrated empty database: `npm start` below covers the first start on a new directory.
    await seedPglite(dataDir);
    server = await serve(["--data-dir", dataDir]);
  });

  afterAll(async () => {
    server?.child.kill("SIGTERM");
    await server?.exited;
    await rm(dataDir, { recursive: true, force: true });
  });

  it("prints a URL on a real port and a user token the API accepts", async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.url).not.toMatch(/:0$/);
    const api = connect(server, server.token);
    const { threadId } = await api.thread.create.mutate({ title: "from the printed token" });
    const { items } = await api.thread.list.query({});
    expect(items.map((t) => t.threadId)).toContain(threadId);
  });

  it("refuses the API without a token", async () => {
    // Raw: no client built on the SDK can leave the token out.
    expect((await httpCall(server.url, null, "query", "thread.list", {})).error?.data?.code).toBe("UNAUTHORIZED");
  });

  it("serves /healthz, /readyz and /metrics", async () => {
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });
    const metrics = await fetch(`${server.url}/metrics`);
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await metrics.text();
    expect(text).toMatch(/turnqueue_commands_total\{type="thread.create",outcome="ok"\} 1/);
    expect(text).toContain("turnqueue_command_duration_seconds_bucket");
    expect(text).toContain("process_cpu_user_seconds_total");
  });

  it("turnqueue token signs with the same secret: the server accepts its tokens, scoped by role and workspace", async () => {
    const issue = async (...args: string[]) => {
      const { code, stdout, stderr } = await turnqueueOnce(["token", "--data-dir", dataDir, ...args]);
      expect(stderr).toBe(`turnqueue token: signed with the secret from ${path.join(dataDir, "secret")}\n`);
      expect(code).toBe(0);
      return stdout.trim();
    };
    const local = connect(server, await issue("--workspace", "local", "--role", "user", "--sub", "ada"));
    const { threadId } = await local.thread.create.mutate({ title: "ada's" });
    expect((await local.thread.get.query({ threadId })).title).toBe("ada's");

    const elsewhere = connect(server, await issue("--workspace", "elsewhere", "--role", "user"));
    expect((await elsewhere.thread.list.query({})).items).toEqual([]);
    expect(codeOf(await elsewhere.thread.get.query({ threadId }).catch((e: unknown) => e))).toMatch(/^(NOT_FOUND|FORBIDDEN)$/);

    const agent = connect(server, await issue("--workspace", "local", "--role", "agent", "--expires", "1h"));
    expect(codeOf(await agent.thread.list.query({}).catch((e: unknown) => e))).toBe("FORBIDDEN");
  });

  it("a token signed with another secret is refused", async () => {
    const otherDir = await tempDir();
    const { stdout } = await turnqueueOnce(["token", "--data-dir", otherDir, "--create-secret", "--workspace", "local", "--role", "user"]);
    await rm(otherDir, { recursive: true, force: true });
    const error = await connect(server, stdout.trim()).thread.list.query({}).catch((e: unknown) => e);
    expect(codeOf(error)).toBe("UNAUTHORIZED");
  });

  it("turnqueue token refuses a bad role or lifetime with a clear message", async () => {
    const badRole = await turnqueueOnce(["token", "--data-dir", dataDir, "--workspace", "local", "--role", "root"]);
    expect(badRole.code).not.toBe(0);
    expect(badRole.stdout).toBe("");
    expect(badRole.stderr).toMatch(/Allowed choices are user, agent, admin/);
    const badExpiry = await turnqueueOnce(["token", "--data-dir", dataDir, "--workspace", "local", "--role", "user", "--expires", "forever"]);
    expect(badExpiry.code).toBe(2);
    expect(badExpiry.stderr).toMatch(/--expires must look like 30d/);
  });

  it("stops on SIGTERM with exit code 0", async () => {
    server.child.kill("SIGTERM");
    expect(await server.exited).toEqual({ code: 0, signal: null });
  });
});

describe("npm start", () => {
  it("serves the embedded default from a data directory and prints the URL and a token", async () => {
    const dataDir = await tempDir();
    // `npm start` is `exec node bin/turnqueue.mjs serve` on the build (made when missing): extra flags go after `--`.
    const npm = run("npm", ["start", "--", "--port", "0"], { env: cleanEnv({ TURNQUEUE_DATA_DIR: dataDir }), detached: true });
    try {
      const [, url] = await npm.waitFor(/serving (http:\/\/\S+)/);
      const [, token] = await npm.waitFor(/user token \(workspace "local"[^)]*\): (\S+)/);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      expect(await connect({ url }, token).thread.list.query({})).toEqual({ items: [], nextCursor: null });
    } finally {
      // The whole group (npm, sh, tsx, node) gets the signal, as a terminal's Ctrl-C does.
      process.kill(-npm.child.pid!, "SIGINT");
      await npm.exited;
      await rm(dataDir, { recursive: true, force: true });
    }
    expect(npm.stderr()).not.toMatch(/second signal/);
  });
});

describe.runIf(hasPostgres)("DATABASE_URL=postgresql://… turnqueue serve", () => {
  it("runs the same server on PostgreSQL, migrating a new database itself; data survives a restart", async () => {
    const database = await createTestDatabase();
    const dataDir = await tempDir();
    const env = cleanEnv({ DATABASE_URL: database.url });
    try {
      const first = await serve(["--data-dir", dataDir], env);
      expect(first.stdout()).toContain("database: PostgreSQL");
      const { threadId } = await connect(first, first.token).thread.create.mutate({ title: "on postgres" });
      first.child.kill("SIGTERM");
      expect(await first.exited).toEqual({ code: 0, signal: null });

      const second = await serve(["--data-dir", dataDir], env);
      try {
        expect((await connect(second, second.token).thread.get.query({ threadId })).title).toBe("on postgres");
      } finally {
        second.child.kill("SIGTERM");
        await second.exited;
      }
    } finally {
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
