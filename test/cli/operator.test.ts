import { mkdtemp, readFile, rm } from "node:fs/promises";
import { ExitCode } from "../../src/exit-codes.js";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/store/database.js";
import { cleanEnv, repoRoot, turnqueue, turnqueueOnce } from "../server/process.js";
import { startTestServer, type TestServer } from "../support/server.js";

/** The command's JSON output, after checking it succeeded. */
const json = <T>(ran: { code: number | null; stdout: string; stderr: string }): T => {
  expect(ran.code, ran.stderr).toBe(0);
  return JSON.parse(ran.stdout) as T;
};

interface Snapshot {
  version: number;
  queue: { paused: boolean; pauseReason: string | null; items: { queueItemId: string; text: string; status: string }[] };
}

// Every command is a real `turnqueue` process (tsx from the sources) against a real server.
describe("operator CLI over a running server (token from TURNQUEUE_TOKEN or --token)", { timeout: 600_000 }, () => {
  let server: TestServer;
  let env: NodeJS.ProcessEnv;
  let threadId: string;

  beforeAll(async () => {
    server = await startTestServer();
    env = cleanEnv({ TURNQUEUE_URL: server.url, TURNQUEUE_TOKEN: await server.token("user", "ops") });
  });
  afterAll(async () => {
    await server?.close();
  });

  const cli = (...args: string[]) => turnqueueOnce(args, env);

  it("--version prints the package's version", async () => {
    const manifest = JSON.parse(await readFile(path.join(repoRoot, "package.json"), "utf8")) as { version: string };
    const ran = await cli("--version");
    expect(ran.code).toBe(0);
    expect(ran.stdout.trim()).toBe(manifest.version);
  });

  it("threads create and threads list (human and --json)", async () => {
    threadId = (await cli("threads", "create", "ops thread")).stdout.trim();
    expect(threadId).not.toBe("");
    const listed = json<{ items: { threadId: string; title: string }[] }>(await cli("threads", "list", "--json"));
    expect(listed.items.map((t) => [t.threadId, t.title])).toEqual([[threadId, "ops thread"]]);
    const human = await cli("threads", "list");
    expect(human.stdout).toContain(threadId);
    expect(human.stdout).toContain("ops thread");
  });

  it("queue add, show, edit, move, pause, resume, remove: each change lands on the server", async () => {
    const first = json<{ queueItemId: string; status: string }>(await cli("queue", "add", threadId, "run the tests", "--json"));
    const second = json<{ queueItemId: string }>(await cli("queue", "add", threadId, "fix lint", "--json", "--message-id", "lint-1"));
    // The same message id again is the same message: nothing queued twice.
    expect(json<{ queueItemId: string }>(await cli("queue", "add", threadId, "fix lint", "--json", "--message-id", "lint-1"))).toEqual({
      queueItemId: second.queueItemId,
      status: "pending",
    });
    expect(first.status).toBe("pending");

    json(await cli("queue", "pause", threadId, "--json"));
    json(await cli("queue", "move", threadId, second.queueItemId, "--to-head", "--json"));
    json(await cli("queue", "edit", threadId, first.queueItemId, "run the tests, then push", "--json"));
    let shown = json<Snapshot>(await cli("queue", "show", threadId, "--json"));
    expect(shown.queue.paused).toBe(true);
    expect(shown.queue.items.map((i) => [i.queueItemId, i.text])).toEqual([
      [second.queueItemId, "fix lint"],
      [first.queueItemId, "run the tests, then push"],
    ]);

    json(await cli("queue", "move", threadId, second.queueItemId, "--after", first.queueItemId, "--json"));
    json(await cli("queue", "remove", threadId, first.queueItemId, "--json"));
    json(await cli("queue", "resume", threadId, "--json"));
    shown = json<Snapshot>(await cli("queue", "show", threadId, "--json"));
    expect(shown.queue.paused).toBe(false);
    expect(shown.queue.items.map((i) => i.queueItemId)).toEqual([second.queueItemId]);

    const human = await cli("queue", "show", threadId);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`1\\.\\t${second.queueItemId}\\tpending\\t"fix lint"`));
  });

  it("events prints the thread's log and ends; --follow keeps printing new events until SIGTERM", async () => {
    const log = (await cli("events", threadId, "--json")).stdout.trim().split("\n").map((line) => JSON.parse(line) as { type: string; version: number });
    expect(log[0].type).toBe("thread.created");
    expect(log.map((e) => e.version)).toEqual(log.map((_, i) => i + 1));
    expect(log.map((e) => e.type)).toContain("queue.item-moved");

    const follow = turnqueue(["events", threadId, "--follow"], env);
    try {
      await follow.waitFor(/thread\.created/);
      json(await cli("queue", "add", threadId, "a late one", "--json"));
      await follow.waitFor(/queue\.item-added\t[^\t]+\t\{[^\n]*"a late one"/);
    } finally {
      follow.child.kill("SIGTERM");
    }
    expect(await follow.exited).toEqual({ code: 0, signal: null });
  });

  it("failures are one line on stderr with an exit code by kind: denied 10, not found 11, refused 12, bad input 2, unreachable 13", async () => {
    await cli("queue", "add", threadId, "waiting", "--message-id", "m-waiting");
    const cases: [args: string[], env: NodeJS.ProcessEnv, code: number, message: RegExp][] = [
      [["queue", "show", threadId], cleanEnv({ TURNQUEUE_URL: server.url }), ExitCode.tokenRefused, /a token is required: --token or TURNQUEUE_TOKEN/],
      [["queue", "show", threadId, "--token", "not-a-token"], cleanEnv({ TURNQUEUE_URL: server.url }), ExitCode.tokenRefused, /UNAUTHORIZED/],
      [["queue", "show", "no-such-thread"], env, ExitCode.notFound, /THREAD_NOT_FOUND: thread no-such-thread does not exist/],
      [["queue", "retry", threadId, "qi_missing"], env, ExitCode.notFound, /^turnqueue: ITEM_NOT_FOUND: /],
      // The message id was queued with another text: the server refuses, and says why.
      [["queue", "add", threadId, "other text", "--message-id", "m-waiting"], env, ExitCode.refused, /^turnqueue: MESSAGE_ID_REUSED: /],
      [["queue", "move", threadId, "qi_x"], env, ExitCode.badSetting, /say where: --after <queueItemId> or --to-head/],
      [["queue", "add", threadId, "x".repeat(100_001)], env, ExitCode.badSetting, /BAD_REQUEST|too_big|100000/i],
      [["threads", "list", "--url", "http://127.0.0.1:1"], env, ExitCode.unavailable, /cannot reach http:\/\/127\.0\.0\.1:1/],
    ];
    // Each case is its own process and changes nothing on the server: they run at once.
    const runs = await Promise.all(cases.map(([args, caseEnv]) => turnqueueOnce(args, caseEnv)));
    for (const [i, [args, , code, message]] of cases.entries()) {
      const ran = runs[i]!;
      expect({ args: args.join(" ").slice(0, 60), code: ran.code }).toEqual({ args: args.join(" ").slice(0, 60), code });
      expect(ran.stdout).toBe("");
      expect(ran.stderr.trim().split("\n"), ran.stderr).toHaveLength(1);
      expect(ran.stderr).toMatch(message);
      expect(ran.stderr).not.toContain(env.TURNQUEUE_TOKEN);
    }
  });
});

describe("operator CLI against the database: migrate, rebuild-projections", { timeout: 600_000 }, () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-cli-db-"));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("migrate applies the migrations once, then says the database is up to date", async () => {
    const first = await turnqueueOnce(["migrate", "--data-dir", dataDir, "--json"], cleanEnv());
    const { applied } = JSON.parse(first.stdout) as { applied: string[] };
    expect(applied.length).toBeGreaterThan(0);
    const again = await turnqueueOnce(["migrate", "--data-dir", dataDir], cleanEnv());
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/PGlite in .+ is up to date/);
  });

  it("rebuild-projections writes the projections again from the event log", async () => {
    // A queue on this database (the server stopped: PGlite has one owner), then its projection rows lost.
    const server = turnqueue(["serve", "--port", "0", "--data-dir", dataDir], cleanEnv());
    const [, url] = await server.waitFor(/serving (http:\/\/\S+)/);
    const [, token] = await server.waitFor(/user token \(workspace "local"[^)]*\): (\S+)/);
    const remote = cleanEnv({ TURNQUEUE_URL: url, TURNQUEUE_TOKEN: token });
    const threadId = (await turnqueueOnce(["threads", "create", "rebuilt"], remote)).stdout.trim();
    json(await turnqueueOnce(["queue", "add", threadId, "survives", "--json"], remote));
    server.child.kill("SIGTERM");
    expect(await server.exited).toEqual({ code: 0, signal: null });

    const wiped = await openDatabase({ databaseUrl: null, dataDir });
    try {
      await wiped.sql.exec(`delete from "QueueItem"; delete from "Thread"`);
    } finally {
      await wiped.close();
    }
    const rebuilt = json<{ threads: number; events: number }>(await turnqueueOnce(["rebuild-projections", "--data-dir", dataDir, "--json"], cleanEnv()));
    expect(rebuilt).toEqual({ threads: 1, events: 2 });

    const check = await openDatabase({ databaseUrl: null, dataDir });
    try {
      const items = await check.sql.query<{ text: string }>(`select text from "QueueItem"`);
      expect(items.map((i) => i.text)).toEqual(["survives"]);
    } finally {
      await check.close();
    }
  });

  it("a database it cannot open is one line and the unavailable exit code, without the URL's password", async () => {
    const ran = await turnqueueOnce(["migrate", "--database-url", "postgresql://nobody:s3cr3t@127.0.0.1:1/none"], cleanEnv());
    expect(ran.code).toBe(ExitCode.unavailable);
    expect(ran.stderr).not.toContain("s3cr3t");
    expect(ran.stderr.trim().split("\n")).toHaveLength(1);
    expect(ran.stderr).toMatch(/^turnqueue: /);
  });
});
