import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ReportRefusedError, type AnyDispatch as Dispatch } from "../../client/agent.js";
import { createTransport } from "../../client/transport.js";
import { InProcessBus } from "../../src/cluster/bus.js";
import { loadConfig } from "../../src/config.js";
import { createEngine } from "../../src/engine/engine.js";
import { startTurnqueue, type Turnqueue } from "../../src/server.js";
import type { Command } from "../../src/domain/index.js";
import type { Config } from "../../src/config.js";
import { openDatabase } from "../../src/store/database.js";
import { claimsIn, ScriptedAgent, testDrainConfig } from "./drain-harness.js";
import { eventually } from "../support/poll.js";

const SHORT_TIMEOUT: Partial<Config> = { drainPolicy: { ...testDrainConfig.drainPolicy!, dispatchTimeoutMs: 1_500 } };

/**
 * Startup recovery: servers are stopped and started again on the same data directory (and
 * port, so connected runtimes reconnect), with what happened in between under the test's control.
 */
describe("startup recovery (real server restarted on its data, agent SDK)", { timeout: 120_000 }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  const nodes: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    // A test that failed while its server was stopped does not take the next tests with it.
    for (const node of booted.values()) await (await node).ensureRunning();
  });
  afterAll(async () => {
    for (const stop of nodes.splice(0)) await stop();
  });
  // Booting (a fresh embedded database each) is the slow part: done once, outside the tests.
  beforeAll(() => boot(), 240_000);

  /** One server per configuration, shared by the tests (each on its own threads). */
  const booted = new Map<string, ReturnType<typeof bootNode>>();
  const boot = (overrides: Partial<Config> = {}) => {
    const key = JSON.stringify(overrides);
    if (!booted.has(key)) booted.set(key, bootNode(overrides));
    return booted.get(key)!;
  };

  async function bootNode(overrides: Partial<Config>) {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-recovery-"));
    const base = await loadConfig({ env: {}, flags: { dataDir, port: "0", logLevel: process.env.TEST_LOG_LEVEL ?? "silent" } });
    let config: Config = { ...base, ...testDrainConfig, ...overrides };
    let app: Turnqueue | null = await startTurnqueue(config);
    config = { ...config, port: Number(new URL(app.url).port) };
    nodes.push(async () => {
      await app?.close();
      await rm(dataDir, { recursive: true, force: true });
    });
    const issue = (role: "user" | "agent") => app!.services.auth.issue({ sub: role, workspaceId: "local", role });
    const node = {
      config,
      get app() {
        return app!;
      },
      url: app.url,
      userToken: await issue("user"),
      agentToken: await issue("agent"),
      async stop() {
        await app!.close();
        app = null;
      },
      /** `overrides` apply to this start only (the next start is back to the node's config). */
      async start(overrides: Partial<Config> = {}) {
        app = await startTurnqueue({ ...config, ...overrides });
      },
      async ensureRunning() {
        if (!app) await node.start();
      },
      async restart(overrides: Partial<Config> = {}) {
        await node.stop();
        await node.start(overrides);
      },
      load: (threadId: string) => app!.services.engine.load(threadId),
      events: (threadId: string) => app!.services.store.readThread(threadId, 0),
    };
    return node;
  }

  /** Runs commands on a stopped server's data through an engine with no reactor and no bus listener. */
  async function offline(config: Config, threadId: string, commands: Command[]) {
    const db = await openDatabase({ databaseUrl: null, dataDir: config.dataDir });
    const engine = createEngine({
      store: db.store,
      bus: new InProcessBus(),
      now: () => new Date(),
      policy: config.drainPolicy,
      logger: pino({ level: "silent" }),
    });
    try {
      for (const command of commands) await engine.execute(threadId, command, { actor: "test" });
    } finally {
      await engine.close();
      await db.store.close();
      await db.close();
    }
  }

  const connect = (node: { url: string; agentToken: string }) => {
    const agent = new ScriptedAgent(node.url, node.agentToken);
    cleanups.push(() => agent.close());
    return agent;
  };

  async function threadWith(node: { url: string; userToken: string }, texts: string[]) {
    const user = createTransport({ url: node.url, token: node.userToken, calls: "socket" });
    const { threadId } = await user.thread.create.mutate({});
    const ids: string[] = [];
    for (const text of texts) ids.push((await user.queue.add.mutate({ threadId, message: { messageId: randomUUID(), text } })).queueItemId);
    await user.close();
    return { threadId, ids };
  }

  it("startup scan: a thread that became eligible while no server ran drains at boot", async () => {
    const node = await boot();
    const { threadId, ids } = await threadWith(node, ["queued before the outage"]);
    await node.stop();
    // While no server runs, the session becomes ready through the engine alone: no reactor
    // sees it, no bus carries it. Only the next server's startup scan can find it.
    await offline(node.config, threadId, [{ type: "agent.session", status: "ready", error: null }]);

    await node.start();
    const agent = connect(node);
    const turn = await agent.nextTurn(threadId);
    expect(turn.dispatch.queueItemId).toBe(ids[0]);
    await turn.start();
  });

  it("an item left sending is redelivered with the same key to the runtime that connects after a restart", async () => {
    const node = await boot();
    const { threadId, ids } = await threadWith(node, ["in flight during the crash", "next"]);
    const first = connect(node);
    await first.session(threadId, "ready");
    const held = await first.nextTurn(threadId);
    // The runtime goes away before starting the turn (its handler is aborted, nothing reported).
    await first.close();
    await node.restart();
    expect((await node.load(threadId)).items.get(ids[0])!.status).toBe("sending");

    const second = connect(node);
    const again = await second.nextTurn(threadId);
    expect(again.dispatch).toEqual(held.dispatch);
    await again.start();
    again.end();
    const next = await second.nextTurn(threadId);
    expect(next.dispatch.queueItemId).toBe(ids[1]);
    await next.start();
    expect(claimsIn(await node.events(threadId)).map((e) => e.payload.queueItemId)).toEqual(ids);
  });

  it("a runtime connected across a restart runs the item once, and its start report lands on the new server", async () => {
    const node = await boot();
    const { threadId, ids } = await threadWith(node, ["started after the restart"]);
    const agent = connect(node);
    await agent.session(threadId, "ready");
    const held = await agent.nextTurn(threadId);
    await node.restart();
    // The report is retried until the restarted server takes it.
    await held.start();
    held.end();
    await eventually(async () => expect((await node.load(threadId)).session).toMatchObject({ status: "ready", activeTurnId: null }));
    expect(agent.handled.filter((d) => d.threadId === threadId).map((d) => d.queueItemId)).toEqual([ids[0]]);
    expect((await node.load(threadId)).items.get(ids[0])).toBeUndefined();
  });

  it("a thread whose session was not ready at boot drains once the agent reports ready", async () => {
    const node = await boot();
    const { threadId, ids } = await threadWith(node, ["waiting for a session"]);
    await node.restart();
    const agent = connect(node);
    await agent.session(threadId, "ready");
    const turn = await agent.nextTurn(threadId);
    expect(turn.dispatch.queueItemId).toBe(ids[0]);
    await turn.start();
  });

  it("dispatch timeout: a turn not started in time fails with 'timeout' and holds the queue", async () => {
    const node = await boot();
    await node.restart(SHORT_TIMEOUT);
    cleanups.push(() => node.restart());
    const { threadId, ids } = await threadWith(node, ["never started", "held behind it"]);
    const agent = connect(node);
    await agent.session(threadId, "ready");
    const held = await agent.nextTurn(threadId);

    await eventually(async () => expect((await node.load(threadId)).items.get(ids[0])!.status).toBe("failed"));
    const state = await node.load(threadId);
    expect(state.items.get(ids[0])!.failureReason).toMatch(/^timeout/);
    expect(state).toMatchObject({ paused: true, pauseReason: "failure" });
    expect(state.items.get(ids[1])!.status).toBe("pending");
    // The runtime that held it learns its start came too late.
    await expect(held.start()).rejects.toBeInstanceOf(ReportRefusedError);
    expect(claimsIn(await node.events(threadId))).toHaveLength(1);
  });

  it("an item left sending while no server ran times out after the next boot when no runtime takes it", async () => {
    const node = await boot();
    const { threadId, ids } = await threadWith(node, ["claimed, then the server died"]);
    await node.stop();
    await offline(node.config, threadId, [
      { type: "agent.session", status: "ready", error: null },
      { type: "drain.claim" },
    ]);
    await node.start(SHORT_TIMEOUT);
    cleanups.push(() => node.restart());
    expect((await node.load(threadId)).items.get(ids[0])!.status).toBe("sending");
    await eventually(async () => expect((await node.load(threadId)).items.get(ids[0])!.status).toBe("failed"));
    expect((await node.load(threadId)).items.get(ids[0])!.failureReason).toMatch(/^timeout/);
  });

  it("agent.dispatches: a stream opened or resumed (lastEventId) gets every dispatch not yet acknowledged, then live ones", async () => {
    const shared = await boot();
    // A workspace of its own: no dispatch of another test is in its stream.
    const issue = (role: "user" | "agent") => shared.app.services.auth.issue({ sub: role, workspaceId: "resumable", role });
    const node = { ...shared, url: shared.url, userToken: await issue("user"), agentToken: await issue("agent"), load: shared.load };
    const x = await threadWith(node, ["x"]);
    const y = await threadWith(node, ["y"]);
    const agentApi = createTransport({ url: node.url, token: node.agentToken, calls: "socket" });
    cleanups.push(() => agentApi.close());
    await agentApi.agent.session.mutate({ threadId: x.threadId, status: "ready" });
    await agentApi.agent.session.mutate({ threadId: y.threadId, status: "ready" });
    await eventually(async () => expect((await node.load(y.threadId)).items.get(y.ids[0])!.status).toBe("sending"));

    const read = (input: { lastEventId?: string }, count: number) =>
      new Promise<{ id: string; data: Dispatch }[]>((resolve, reject) => {
        const got: { id: string; data: Dispatch }[] = [];
        const sub = agentApi.agent.dispatches.subscribe(input, {
          onData: (d) => {
            got.push(d);
            if (got.length === count) {
              sub.unsubscribe();
              resolve(got);
            }
          },
          onError: reject,
        });
      });
    const all = await read({}, 2);
    expect(all.map((d) => d.data.queueItemId).sort()).toEqual([x.ids[0], y.ids[0]].sort());
    const [earlier, later] = all;
    expect(BigInt(earlier.id)).toBeLessThan(BigInt(later.id));
    // Resuming after both: neither was acknowledged, so both come again (the runtime dedupes by queueItemId).
    const resumed = await read({ lastEventId: later.id }, 2);
    expect(resumed.map((d) => d.id)).toEqual([earlier.id, later.id]);

    // Acknowledged (started) dispatches are not delivered again; new ones arrive live.
    await agentApi.agent.turnStarted.mutate({ threadId: earlier.data.threadId, queueItemId: earlier.data.queueItemId!, turnId: "t1" });
    const z = await threadWith(node, []);
    await agentApi.agent.session.mutate({ threadId: z.threadId, status: "ready" });
    const fresh = read({ lastEventId: later.id }, 2);
    const user = createTransport({ url: node.url, token: node.userToken, calls: "socket" });
    cleanups.push(() => user.close());
    const { queueItemId } = await user.queue.add.mutate({ threadId: z.threadId, message: { messageId: "z", text: "z" } });
    expect((await fresh).map((d) => d.data.queueItemId)).toEqual([later.data.queueItemId, queueItemId]);
  });
});
