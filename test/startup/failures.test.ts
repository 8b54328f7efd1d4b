import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ExitCode } from "../../src/exit-codes.js";
import { createTestDatabase, hasPostgres, postgresUrl } from "../support/postgres.js";
import { seedPglite } from "../support/server.js";
import { cleanEnv, serve, turnqueue, turnqueueOnce } from "../server/process.js";
import { startTcpProxy } from "../server/tcp-proxy.js";

// Real `turnqueue serve` processes on a shared two-core machine: limits, not measurements.
vi.setConfig({ testTimeout: 180_000, hookTimeout: 120_000 });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-failures-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The lines of stderr that are not JSON log lines: what a person reads. */
const said = (stderr: string) => stderr.split("\n").filter((line) => line !== "" && !line.startsWith("{"));

/** Runs `turnqueue serve` to its end and checks the one-line verdict. */
async function refused(args: string[], env = cleanEnv()) {
  const result = await turnqueueOnce(["serve", "--port", "0", ...args], env);
  expect(result.stdout).toBe("");
  expect(said(result.stderr)).toHaveLength(1);
  expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  return { ...result, line: said(result.stderr)[0]! };
}

describe("turnqueue serve: each start-up failure is one line naming what to fix, with its own exit code", () => {
  it("a port in use names --port / TURNQUEUE_PORT (exit 3)", async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const { port } = taken.address() as net.AddressInfo;
    try {
      // A migrated database: the port is taken after the database opens.
      await seedPglite(path.join(dir, "port"));
      const { code, line } = await refused(["--port", String(port), "--data-dir", path.join(dir, "port")]);
      expect(code).toBe(ExitCode.portUnavailable);
      expect(line).toBe(`turnqueue: 127.0.0.1:${port} is already in use: choose another with --port / TURNQUEUE_PORT (0 picks a free one)`);
    } finally {
      taken.close();
    }
  });

  it("a data directory that cannot be created names --data-dir / TURNQUEUE_DATA_DIR (exit 4)", async () => {
    // Tests run as root here, which no permission bit stops: a path through a regular file
    // is a directory nobody can create.
    const file = path.join(dir, "a-file");
    await writeFile(file, "");
    const { code, line } = await refused(["--data-dir", path.join(file, "data")]);
    expect(code).toBe(ExitCode.dataDirUnusable);
    expect(line).toMatch(/^turnqueue: the data directory .*a-file\/data is not usable \(ENOTDIR\): .*--data-dir \/ TURNQUEUE_DATA_DIR$/);
  });

  it("a too-short secret is refused without printing it back (exit 2)", async () => {
    const secret = "hunter2-is-not-long";
    const { code, line, stderr } = await refused(["--data-dir", path.join(dir, "secret")], cleanEnv({ TURNQUEUE_SECRET: secret }));
    expect(code).toBe(ExitCode.badSetting);
    expect(line).toBe(`turnqueue: --secret / TURNQUEUE_SECRET: must be at least 32 characters (got a value of ${secret.length} characters)`);
    expect(stderr).not.toContain(secret);
  });

  it("REDIS_URL without DATABASE_URL names both (exit 2)", async () => {
    const { code, line } = await refused(["--data-dir", path.join(dir, "redis")], cleanEnv({ REDIS_URL: "redis://127.0.0.1:6379" }));
    expect(code).toBe(ExitCode.badSetting);
    expect(line).toMatch(/^turnqueue: --redis-url \/ REDIS_URL is set without --database-url \/ DATABASE_URL: .* Set DATABASE_URL .* or unset REDIS_URL\.$/);
  });

  it("an unreachable DATABASE_URL is retried with backoff for --database-wait-ms, then refused without its password (exit 6)", async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as net.AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve())); // nothing listens there now
    const url = `postgresql://tq:sw0rdfish@127.0.0.1:${port}/turnqueue`;
    const { code, line, stderr } = await refused(["--data-dir", path.join(dir, "db"), "--database-wait-ms", "1500"], cleanEnv({ DATABASE_URL: url }));
    expect(code).toBe(ExitCode.databaseUnreachable);
    expect(line).toMatch(
      new RegExp(`^turnqueue: cannot reach the database at postgresql://tq:\\*\\*\\*@127\\.0\\.0\\.1:${port}/turnqueue \\(ECONNREFUSED\\) after \\d+ attempts in 2 s: start it, or fix --database-url / DATABASE_URL; --database-wait-ms / TURNQUEUE_DATABASE_WAIT_MS sets how long to wait$`),
    );
    const retries = stderr.split("\n").filter((l) => l.includes("database unreachable; retrying")).map((l) => JSON.parse(l) as { retryInMs: number });
    expect(retries.length).toBeGreaterThanOrEqual(2);
    expect(retries[1]!.retryInMs).toBeGreaterThan(retries[0]!.retryInMs);
    expect(stderr).not.toContain("sw0rdfish");
  });

  describe.runIf(hasPostgres)("on PostgreSQL", () => {
    it("a database that does not exist is refused at once (exit 7)", async () => {
      const url = new URL(postgresUrl!);
      url.pathname = "/tq_no_such_database";
      const { code, line } = await refused(["--data-dir", path.join(dir, "missing")], cleanEnv({ DATABASE_URL: url.toString() }));
      expect(code).toBe(ExitCode.databaseRefused);
      expect(line).toMatch(/^turnqueue: the database at .*\/tq_no_such_database refused: the database does not exist: create it .* --database-url \/ DATABASE_URL$/);
    });

    it("an unreachable REDIS_URL names --redis-url / REDIS_URL (exit 8)", async () => {
      const database = await createTestDatabase();
      try {
        const { code, line } = await refused(
          ["--data-dir", path.join(dir, "redis-down")],
          cleanEnv({ DATABASE_URL: database.url, REDIS_URL: "redis://127.0.0.1:1" }),
        );
        expect(code).toBe(ExitCode.redisUnreachable);
        expect(line).toMatch(/^turnqueue: Redis at redis:\/\/127\.0\.0\.1:1 is unreachable: .*: start it, or fix --redis-url \/ REDIS_URL$/);
      } finally {
        await database.drop();
      }
    });

    it("a database that comes up while the server waits for it is used", async () => {
      const database = await createTestDatabase();
      const target = new URL(database.url);
      const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
      await proxy.cut();
      const viaProxy = new URL(database.url);
      viaProxy.port = String(proxy.port);
      const server = turnqueue(["serve", "--port", "0", "--data-dir", path.join(dir, "late")], cleanEnv({ DATABASE_URL: viaProxy.toString() }));
      try {
        await new Promise<void>((resolve) => {
          const check = () => (server.stderr().includes("database unreachable; retrying") ? resolve() : setTimeout(check, 100));
          check();
        });
        await proxy.restore();
        const [, url] = await server.waitFor(/serving (http:\/\/\S+)/);
        expect((await fetch(`${url}/readyz`)).status).toBe(200);
      } finally {
        server.child.kill("SIGTERM");
        await server.exited;
        await proxy.close();
        await database.drop();
      }
    });
  });
});

describe("turnqueue token", () => {
  it("refuses to invent a secret where there is none, and creates nothing (exit 9)", async () => {
    const empty = path.join(dir, "no-server-here");
    const { code, stdout, stderr } = await turnqueueOnce(["token", "--data-dir", empty, "--workspace", "local", "--role", "user"]);
    expect(code).toBe(ExitCode.noSecret);
    expect(stdout).toBe("");
    expect(stderr).toBe(
      `turnqueue: no secret in ${path.join(empty, "secret")}: run where the server keeps its data (--data-dir / TURNQUEUE_DATA_DIR), ` +
        "set TURNQUEUE_SECRET, or pass --create-secret to make a new one (tokens it signs work only on a server using that secret)\n",
    );
    await expect(stat(empty)).rejects.toThrow(/ENOENT/);
  });

  it("--create-secret makes one and says where", async () => {
    const fresh = path.join(dir, "fresh");
    const { code, stdout, stderr } = await turnqueueOnce(["token", "--data-dir", fresh, "--create-secret", "--workspace", "local", "--role", "user"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/);
    expect(stderr).toBe(`turnqueue token: signed with the secret from ${path.join(fresh, "secret")}\n`);
    expect((await stat(path.join(fresh, "secret"))).mode & 0o777).toBe(0o600);
  });

  it("names TURNQUEUE_SECRET when it signs with it, never its value", async () => {
    const secret = "q".repeat(48);
    const { code, stderr } = await turnqueueOnce(
      ["token", "--data-dir", path.join(dir, "unused"), "--workspace", "local", "--role", "agent"],
      cleanEnv({ TURNQUEUE_SECRET: secret }),
    );
    expect(code).toBe(0);
    expect(stderr).toBe("turnqueue token: signed with the secret from TURNQUEUE_SECRET\n");
  });
});

describe("turnqueue serve prints no secret or token into its log", () => {
  it("a whole run at debug level: the log names ids, never the secret or the printed token", async () => {
    const secret = "z".repeat(40);
    await seedPglite(path.join(dir, "log"));
    const server = await serve(["--data-dir", path.join(dir, "log"), "--log-level", "debug"], cleanEnv({ TURNQUEUE_SECRET: secret }));
    try {
      await fetch(`${server.url}/trpc/thread.list`, { headers: { authorization: `Bearer ${server.token}` } });
      await fetch(`${server.url}/trpc/thread.list`, { headers: { authorization: "Bearer not-a-token" } });
    } finally {
      server.child.kill("SIGTERM");
      await server.exited;
    }
    expect(server.stderr()).toContain("turnqueue is serving");
    expect(server.stderr()).not.toContain(secret);
    expect(server.stderr()).not.toContain(server.token);
    expect(server.stderr()).not.toContain("not-a-token");
  });
});
