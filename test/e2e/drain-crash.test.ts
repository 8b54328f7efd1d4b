import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Agent } from "../../client/agent.js";
import { startEchoAgent } from "../../client/echo-agent.js";
import { createTransport, type Transport } from "../../client/transport.js";
import { createAuth } from "../../src/auth/tokens.js";
import type { StoredEvent } from "../../src/domain/index.js";
import { openDatabase } from "../../src/store/database.js";
import { createTestDatabase, hasPostgres } from "../support/postgres.js";
import { ServerProcess } from "../support/server-process.js";

const THREADS = 20;
const ITEMS_PER_THREAD = 10;
/** Restarting on PostgreSQL is quick, on PGlite (reopened from disk) slow: kill more where it is cheap. */
const KILLS = hasPostgres ? 6 : 3;

const started = Date.now();
const trace = (line: string) => process.env.TRACE_CRASH && console.error(`[${Date.now() - started} ms] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A user command retried until the server acknowledges it (the server is being killed meanwhile). */
async function untilAcknowledged<T>(call: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await call();
    } catch (error) {
      const code = (error as { data?: { code?: string } }).data?.code;
      if (code && code !== "SERVICE_UNAVAILABLE" && code !== "INTERNAL_SERVER_ERROR") throw error;
      await sleep(100);
    }
  }
}

describe("crash safety: SIGKILL at random moments while 20 threads drain 200 items to an echo agent", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  });

  it("every acknowledged item is resolved (or failed and visible), each handler ran once, each thread's order held", { timeout: 300_000 }, async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-crash-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    // PostgreSQL when the suite has one (CI): restarts are quicker than reopening PGlite.
    const pg = hasPostgres ? await createTestDatabase() : null;
    if (pg) cleanups.push(() => pg.drop());
    const databaseUrl = pg?.url ?? null;
    const secret = randomBytes(32).toString("hex");
    const auth = createAuth(secret);
    const server = new ServerProcess(dataDir, secret, databaseUrl);
    cleanups.push(() => server.stop());
    const url = await server.start();
    const port = Number(new URL(url).port);

    /** queueItemId → how many times the agent's handler ran it. */
    const runs = new Map<string, number>();
    const agent: Agent = startEchoAgent({
      url,
      token: await auth.issue({ sub: "echo", workspaceId: "local", role: "agent" }),
      delayMs: 20,
      echo: () => {},
      onRun: (d) => runs.set(d.queueItemId, (runs.get(d.queueItemId) ?? 0) + 1),
    });
    cleanups.push(() => agent.close());
    const user: Transport = createTransport({ url, token: await auth.issue({ sub: "user", workspaceId: "local", role: "user" }), calls: "socket" });
    cleanups.push(() => user.close());

    // Each thread enqueues its items one after another (so their order is known), retrying
    // through the crashes until each add is acknowledged.
    // A create retried with the same key names the same thread, so it is retried like an add.
    const keys = Array.from({ length: THREADS }, (_, t) => `crash-thread-${t}`);
    const acknowledged = new Map<string, string[]>();
    const producing = Promise.all(
      keys.map(async (key, t) => {
        const { threadId } = await untilAcknowledged(() => user.thread.create.mutate({ threadId: key }));
        acknowledged.set(threadId, []);
        for (let i = 0; i < ITEMS_PER_THREAD; i++) {
          const messageId = `t${t}-m${i}`;
          await untilAcknowledged(() => user.queue.add.mutate({ threadId, message: { messageId, text: `item ${i} of thread ${t}` } }));
          acknowledged.get(threadId)!.push(messageId);
          await sleep(Math.random() * 200);
        }
      }),
    );

    for (let kill = 0; kill < KILLS; kill++) {
      await sleep(300 + Math.random() * 1_500);
      await server.kill();
      const t0 = Date.now();
      await server.start(port);
      trace(`kill ${kill}: restarted in ${Date.now() - t0} ms`);
    }
    await producing;
    trace("all items acknowledged");
    const threadIds = [...acknowledged.keys()];

    // Let the queues drain on the last server: every thread empty, its session idle.
    for (;;) {
      const snapshots = await Promise.all(threadIds.map((threadId) => untilAcknowledged(() => user.thread.get.query({ threadId }))));
      const busy = snapshots.filter(
        (s) =>
          s.session.activeTurnId !== null ||
          s.queue.items.some((i) => i.status === "sending" || (i.status === "pending" && !s.queue.paused)),
      );
      if (busy.length === 0) break;
      trace(`waiting: ${busy.length} threads busy, ${[...runs.values()].length} runs, ${snapshots.reduce((n, s) => n + s.queue.items.length, 0)} items left`);
      await sleep(250);
    }
    await agent.close();
    await server.stop();

    // Read the truth from the log itself.
    const db = await openDatabase({ databaseUrl, dataDir });
    try {
      for (const threadId of threadIds) {
        const events: StoredEvent[] = await db.store.readThread(threadId, 0);
        const sent = events.filter((e) => e.type === "message.sent").map((e) => e.payload.messageId);
        const failed = events.flatMap((e) => (e.type === "queue.item-send-failed" && e.payload.final ? [e.payload.queueItemId] : []));
        const added = new Map(
          events.filter((e) => e.type === "queue.item-added").map((e) => [e.payload.queueItemId, e.payload.messageId]),
        );
        const stillFailed = new Set(failed.filter((id) => !events.some((e) => e.type === "queue.item-resolved" && e.payload.queueItemId === id)));
        const failedMessages = [...stillFailed].map((id) => added.get(id));

        // Every acknowledged item ended resolved, or failed and still visible in the queue.
        for (const messageId of acknowledged.get(threadId)!) {
          expect(sent.includes(messageId) || failedMessages.includes(messageId), `${threadId}: ${messageId} was lost`).toBe(true);
        }
        // Sent once each, in the order they were queued.
        expect(new Set(sent).size).toBe(sent.length);
        const queuedOrder = acknowledged.get(threadId)!.filter((m) => sent.includes(m));
        expect(sent).toEqual(queuedOrder);
        // The agent's handler ran each resolved item exactly once.
        for (const e of events) {
          if (e.type === "queue.item-resolved") expect(runs.get(e.payload.queueItemId), `runs of ${e.payload.queueItemId}`).toBe(1);
        }
      }
      expect([...runs.values()].every((n) => n === 1)).toBe(true);
      expect([...acknowledged.values()].flat()).toHaveLength(THREADS * ITEMS_PER_THREAD);
    } finally {
      await db.store.close();
      await db.close();
    }
  });
});
