import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runAgent } from "../../client/agent.js";
import { createTurnqueueClient, type TurnqueueClient } from "../../client/index.js";
import { createTransport, type ConnectionChange } from "../../client/transport.js";
import { createAuth } from "../../src/auth/tokens.js";
import { describeFailure } from "../../src/cli/remote.js";
import { ExitCode } from "../../src/exit-codes.js";
import { openDatabase } from "../../src/store/database.js";
import { codeOf, failure, watchEvents } from "../support/clients.js";
import { trpcHttpRequests } from "../support/http-requests.js";
import { eventually } from "../support/poll.js";
import { createTestDatabase, hasPostgres } from "../support/postgres.js";
import { ServerProcess } from "../support/server-process.js";
import { startTestServer, type TestServer } from "../support/server.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `client`'s calls go over its socket: one made now reaches the server without an HTTP request. */
const overTheSocket = (url: string, call: () => Promise<unknown>) =>
  eventually(async () => {
    const before = await trpcHttpRequests(url);
    await call();
    expect(await trpcHttpRequests(url)).toBe(before);
  });

describe("SDK calls over its WebSocket: a real server process, killed and restarted", { timeout: 180_000 }, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  let server: ServerProcess;
  let url: string;
  let port: number;
  let databaseUrl: string | null;
  let dataDir: string;
  let auth: ReturnType<typeof createAuth>;
  const token = (role: "user" | "agent", sub: string) => auth.issue({ sub, workspaceId: "sockets", role });

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-sockets-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const pg = hasPostgres ? await createTestDatabase() : null;
    if (pg) cleanups.push(() => pg.drop());
    databaseUrl = pg?.url ?? null;
    const secret = randomBytes(32).toString("hex");
    auth = createAuth(secret);
    server = new ServerProcess(dataDir, secret, databaseUrl);
    cleanups.push(() => server.stop());
    url = await server.start();
    port = Number(new URL(url).port);
  });
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  });

  it("a call over the socket leaves at once, not on tRPC's next timer: with the client's timeouts frozen (a fake clock), it is still answered", async () => {
    const user = createTurnqueueClient({ url, token: await token("user", "quick") });
    cleanups.push(() => user.close());
    await overTheSocket(url, () => user.thread.list.query({ limit: 1 }));
    const realSetTimeout = globalThis.setTimeout;
    const giveUp = new Promise<"never answered">((resolve) => realSetTimeout(() => resolve("never answered"), 10_000));
    // tRPC's WebSocket client waits for a setTimeout(0) before it writes a call (1 ms or more
    // in Node); frozen, that wait never ends, so only a call written without it is answered.
    vi.useFakeTimers({ toFake: ["setTimeout"] });
    try {
      const answer = await Promise.race([user.thread.list.query({ limit: 1 }).then(() => "answered"), giveUp]);
      expect(answer).toBe("answered");
    } finally {
      vi.useRealTimers();
    }
  });

  it("a user's and an agent's queries and mutations go over their sockets once open: the server answers none of them over HTTP", async () => {
    const user = createTurnqueueClient({ url, token: await token("user", "ann") });
    cleanups.push(() => user.close());
    await overTheSocket(url, () => user.thread.list.query({ limit: 1 }));
    const changes: ConnectionChange[] = [];
    const ran: string[] = [];
    const agent = runAgent({
      url,
      token: await token("agent", "runner"),
      onConnection: (change) => changes.push(change),
      async onTurn(turn) {
        await turn.start();
        ran.push(turn.dispatch.message.text);
        return { outcome: "completed" };
      },
    });
    cleanups.push(() => agent.close());
    await eventually(() => expect(changes).toContainEqual({ state: "ready" }));

    const before = await trpcHttpRequests(url);
    const { threadId } = await user.thread.create.mutate({ title: "over the socket" });
    await agent.session(threadId, "ready");
    for (const text of ["one", "two", "three"]) await user.queue.add.mutate({ threadId, message: { messageId: `m-${text}`, text } });
    await eventually(async () => {
      const thread = await user.thread.get.query({ threadId });
      expect(thread.queue.items).toEqual([]);
      expect(thread.session.activeTurnId).toBeNull();
    });
    expect(ran).toEqual(["one", "two", "three"]);
    expect(await trpcHttpRequests(url)).toBe(before);
    await agent.close();
  });

  it("while the server is down a call fails at once, as an unreachable server (the CLI's `cannot reach`), a live queue's add waits in its outbox, and both go through once it is back", async () => {
    const user = createTurnqueueClient({ url, token: await token("user", "bob") });
    cleanups.push(() => user.close());
    const { threadId } = await user.thread.create.mutate({ title: "down and back" });
    const queue = user.openThreadQueue(threadId);
    await queue.whenSynced();
    await overTheSocket(url, () => user.thread.get.query({ threadId }));

    await server.stop();
    const refused = await failure(user.thread.get.query({ threadId }));
    expect(codeOf(refused)).toBeUndefined();
    const told = describeFailure(refused, url);
    expect([told.exitCode, told.message]).toEqual([ExitCode.unavailable, expect.stringMatching(new RegExp(`^cannot reach ${url}: `))]);

    await eventually(() => expect(queue.status).not.toBe("connected"));
    const added = queue.add("written while the server was down", { messageId: "m-down" });
    await eventually(() => expect(queue.outbox.map((e) => e.messageId)).toEqual(["m-down"]));

    await server.start(port);
    expect((await added).status).toBe("pending");
    const items = (await user.thread.get.query({ threadId })).queue.items;
    expect(items.map((i) => i.messageId)).toEqual(["m-down"]);
    await overTheSocket(url, () => user.thread.get.query({ threadId }));
    queue.close();
  });

  it("SIGKILL mid-burst of queue.add from 12 clients, each resending what was not acknowledged: every acknowledged add is in the log exactly once, none twice", async () => {
    const CLIENTS = 12;
    const clients: TurnqueueClient[] = [];
    for (let c = 0; c < CLIENTS; c++) {
      const client = createTurnqueueClient({ url, token: await token("user", `burst-${c}`) });
      cleanups.push(() => client.close());
      clients.push(client);
    }
    const threads = await Promise.all(clients.map(async (c, i) => (await c.thread.create.mutate({ title: `burst ${i}` })).threadId));
    await Promise.all(clients.map((c, i) => overTheSocket(url, () => c.thread.get.query({ threadId: threads[i] }))));

    const acknowledged = new Map<string, string[]>(threads.map((t) => [t, []]));
    /** Calls whose answer was lost (in flight when the server died, or sent while it was down). */
    let unanswered = 0;
    let stop = false;
    const bursting = Promise.all(
      clients.map(async (client, c) => {
        const threadId = threads[c];
        for (let i = 0; !stop; i++) {
          const messageId = `c${c}-m${i}`;
          // The caller's part: resend with the same messageId until the server answers.
          for (;;) {
            try {
              await client.queue.add.mutate({ threadId, message: { messageId, text: `add ${i} of client ${c}` } });
              acknowledged.get(threadId)!.push(messageId);
              break;
            } catch (error) {
              const code = codeOf(error);
              if (code !== undefined && code !== "SERVICE_UNAVAILABLE") throw error;
              unanswered++;
              await sleep(100);
            }
          }
        }
      }),
    );
    const count = () => [...acknowledged.values()].reduce((n, ids) => n + ids.length, 0);
    await eventually(() => expect(count()).toBeGreaterThan(100), 60_000);
    await server.kill();
    const atKill = count();
    await server.start(port);
    await eventually(() => expect(count()).toBeGreaterThan(atKill + 100), 60_000);
    stop = true;
    await bursting;
    expect(unanswered).toBeGreaterThan(0);
    await server.stop();

    const db = await openDatabase({ databaseUrl, dataDir });
    try {
      for (const threadId of threads) {
        const events = await db.store.readThread(threadId, 0);
        const added = events.flatMap((e) => (e.type === "queue.item-added" ? [e.payload.messageId] : []));
        expect(new Set(added).size, `${threadId}: an add landed twice`).toBe(added.length);
        const landed = new Set(added);
        expect(acknowledged.get(threadId)!.filter((m) => !landed.has(m)), `${threadId}: acknowledged but not in the log`).toEqual([]);
        // Each client resent until acknowledged, one add at a time: the log holds those and nothing else.
        expect(added).toEqual(acknowledged.get(threadId));
      }
    } finally {
      await db.store.close();
      await db.close();
    }
  });
});

describe("SDK calls over its WebSocket: what the socket carries and what it leaves to HTTP", { timeout: 120_000 }, () => {
  const limits = { maxBodyBytes: 64 * 1024, maxBatchSize: 64, maxSubscriptionsPerConnection: 100, maxConnectionsPerToken: 50 };
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ config: { limits } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("a call over the server's body limit is refused 413 over HTTP; the socket, its subscription and the calls in flight beside it go on", async () => {
    const changes: ConnectionChange[] = [];
    const user = createTransport({ url: server.url, token: await server.token("user", "local", "carol"), calls: "socket", onConnection: (c) => changes.push(c) });
    try {
      const { threadId } = await user.thread.create.mutate({ title: "oversized" });
      await overTheSocket(server.url, () => user.thread.get.query({ threadId }));
      const events = watchEvents(user, { threadId });
      await events.started();

      const [big, beside] = await Promise.allSettled([
        user.queue.add.mutate({ threadId, message: { messageId: "m-big", text: "x".repeat(70_000) } }),
        Promise.all(Array.from({ length: 10 }, (_, i) => user.queue.add.mutate({ threadId, message: { messageId: `m-${i}`, text: `beside ${i}` } }))),
      ]);
      expect(big.status === "rejected" && big.reason).toMatchObject({ data: { code: "PAYLOAD_TOO_LARGE", httpStatus: 413 } });
      expect(beside.status).toBe("fulfilled");
      // Under the server's limit but over what one socket message of ours may hold: HTTP carries it.
      await user.queue.add.mutate({ threadId, message: { messageId: "m-large", text: "y".repeat(62_000) } });

      const messageIds = (await user.thread.get.query({ threadId })).queue.items.map((i) => i.messageId);
      expect(messageIds.sort()).toEqual([...Array.from({ length: 10 }, (_, i) => `m-${i}`), "m-large"].sort());
      await events.count(1 + 11);
      expect(events.types().filter((t) => t === "queue.item-added")).toHaveLength(11);
      expect(changes.filter((c) => c.state === "down")).toEqual([]);
      await overTheSocket(server.url, () => user.thread.get.query({ threadId }));
    } finally {
      await user.close();
    }
  });

  it("100 calls made at once from one client all succeed: the socket carries 32 at a time (the server refuses a message of more than 64), HTTP the rest", async () => {
    const user = createTurnqueueClient({ url: server.url, token: await server.token("user", "local", "dana") });
    try {
      const { threadId } = await user.thread.create.mutate({ title: "a hundred at once" });
      await overTheSocket(server.url, () => user.thread.get.query({ threadId }));
      const ids = Array.from({ length: 100 }, (_, i) => `m-${i}`);
      await Promise.all(ids.map((messageId) => user.queue.add.mutate({ threadId, message: { messageId, text: messageId } })));
      expect((await user.thread.get.query({ threadId })).queue.items.map((i) => i.messageId).sort()).toEqual([...ids].sort());
    } finally {
      await user.close();
    }
  });
});

describe("SDK calls over its WebSocket across a graceful restart", { timeout: 120_000 }, () => {
  it("the server answers the socket calls in flight before it closes the socket: each is committed or refused SERVICE_UNAVAILABLE (call again), none left unknown", async () => {
    let server = await startTestServer();
    const user = createTurnqueueClient({ url: server.url, token: await server.token("user", "local", "erin") });
    try {
      const { threadId } = await user.thread.create.mutate({ title: "restart" });
      await overTheSocket(server.url, () => user.thread.get.query({ threadId }));
      const sent = Array.from({ length: 30 }, (_, i) => `m${i}`);
      const outcomes = sent.map((messageId) =>
        user.queue.add.mutate({ threadId, message: { messageId, text: messageId } }).then(
          () => "answered",
          (error: unknown) => codeOf(error) ?? `unknown: ${(error as Error).message}`,
        ),
      );
      await outcomes[0];
      server = await server.restart();
      const all = await Promise.all(outcomes);
      expect(all.filter((o) => o !== "answered" && o !== "SERVICE_UNAVAILABLE")).toEqual([]);
      const answered = sent.filter((_, i) => all[i] === "answered");
      const items = (await user.thread.get.query({ threadId })).queue.items.map((i) => i.messageId);
      expect(items.filter((m) => answered.includes(m)).sort()).toEqual([...answered].sort());
    } finally {
      await user.close();
      await server.close();
    }
  });
});
