import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuth } from "../../src/auth/tokens.js";
import { InProcessLease } from "../../src/cluster/lease.js";
import type { Bus } from "../../src/cluster/bus.js";
import { loadConfig } from "../../src/config.js";
import { eventually } from "../support/poll.js";
import { createEngine } from "../../src/engine/engine.js";
import { startDrainReactor } from "../../src/reactors/drain.js";
import type { Config } from "../../src/config.js";
import type { Services } from "../../src/server.js";
import { TokenConnections } from "../../src/token-connections.js";
import { openDatabase, type Database } from "../../src/store/database.js";

/** Fault injected: a bus that loses every message (the Bus contract allows loss). */
class LosingBus implements Bus {
  readonly shared = false;
  async publish(): Promise<void> {}
  async subscribe() {
    return async () => {};
  }
  onReconnected() {
    return () => {};
  }
  async close(): Promise<void> {}
}


describe("drain reactor on a bus that loses every message (fault injected): the periodic sweep drains", () => {
  let dataDir: string;
  let db: Database;
  let services: Services;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-sweep-"));
    db = await openDatabase({ databaseUrl: null, dataDir });
    const bus = new LosingBus();
    const logger = pino({ level: "silent" });
    const now = () => new Date();
    // The settings table's defaults, but a quick sweep (the only way back for what the bus loses here).
    const config: Config = {
      ...(await loadConfig({ env: { TURNQUEUE_SECRET: "x".repeat(32) }, flags: { dataDir, port: "0", logLevel: "silent" } })),
      sweepIntervalMs: 150,
      editCoalesceMs: 50,
    };
    services = {
      config,
      logger,
      db,
      store: db.store,
      engine: createEngine({ store: db.store, bus, now, policy: config.drainPolicy, logger }),
      bus,
      lease: new InProcessLease(),
      auth: createAuth(config.secret),
      metrics: new Registry(),
      connections: new TokenConnections(config.limits.maxConnectionsPerToken),
      now,
    };
  });
  afterAll(async () => {
    await services?.engine.close();
    await db?.store.close();
    await db?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const threadWithItem = async (threadId: string, options: { paused: boolean }) => {
    const run = (command: Parameters<Services["engine"]["execute"]>[1]) =>
      services.engine.execute(threadId, command, { actor: "test" });
    await run({ type: "thread.create", workspaceId: "w", title: "" });
    if (options.paused) await run({ type: "queue.pause" });
    await run({ type: "queue.add", queueItemId: `${threadId}-item`, message: { messageId: "m", text: "t", attachments: [] }, options: {}, delivery: "queue", author: null });
    await run({ type: "agent.session", status: "ready", error: null });
  };

  it("claims the head of a thread whose trigger was lost, and leaves a paused thread alone", async () => {
    const reactor = await startDrainReactor(services);
    await reactor.recovered;
    // Both get work after the startup scan, and the bus tells no one. The paused one first:
    // any sweep that finds the other one finds it too.
    await threadWithItem("paused", { paused: true });
    await threadWithItem("lost-trigger", { paused: false });

    await eventually(async () => expect((await services.engine.load("lost-trigger")).items.get("lost-trigger-item")!.status).toBe("sending"));
    // The sweep that claimed it looked at both threads at once (they are scanned
    // concurrently); closing waits for every look in progress to finish.
    await reactor.close();
    expect((await services.engine.load("paused")).items.get("paused-item")!.status).toBe("pending");
  });
});
