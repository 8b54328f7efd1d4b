import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { runAgent, type Agent } from "../../client/agent.js";
import { createTurnqueueClient, type TurnqueueClient } from "../../client/index.js";
import type { Role } from "../../src/domain/index.js";
import { TOKEN_EXPIRED } from "../../src/token-expiry.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { RawSocket } from "../support/trpc-raw.js";
import { connect, uid, type Client } from "../support/clients.js";
import { eventually as poll } from "../support/poll.js";
import { trpcHttpRequests } from "../support/http-requests.js";

/**
 * Real tokens that expire in 8 seconds (jose, whole seconds: 7 to 8 s of life; 3 s was too
 * short on a loaded CI machine to open a socket and make its first calls). The clock is the
 * tokens' own expiry: the tests wait past it, no fake timers.
 */
const LIFETIME = "8s";
const eventually = (assertion: () => void | Promise<void>) => poll(assertion, 30_000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
/** Resolves a moment after the token's expiry. */
const pastExpiry = (token: string) => sleep(decodeJwt(token).exp! * 1000 - Date.now() + 300);

describe("tokens expire on long-lived connections too, and the SDK renews them", () => {
  let server: TestServer;
  let owner: Client;
  const shortToken = (role: Role, sub: string) => server.services.auth.issue({ sub, workspaceId: "acme", role }, { expiresIn: LIFETIME });

  beforeAll(async () => {
    server = await startTestServer();
    owner = connect(server, await server.token("user", "acme", "owner"));
  });
  afterAll(async () => {
    owner?.close();
    await server?.close();
  });

  const newThread = async () => (await owner.thread.create.mutate({ threadId: uid("t") })).threadId;

  it("a tRPC WebSocket opened with a short token is closed at its expiry (4501), its subscription ends with it, and the token opens nothing after", async () => {
    const threadId = await newThread();
    const token = await shortToken("user", "alice");
    const socket = await RawSocket.open(server.wsUrl, token);
    const started = await socket.call("subscription", "thread.events", { threadId }, { keep: true });
    expect(started.error).toBeNull();
    expect((await socket.call("mutation", "queue.pause", { threadId })).error).toBeNull();

    await Promise.race([socket.whenClosed(), pastExpiry(token).then(() => sleep(2_000))]);
    expect(socket.closed).toEqual({ code: TOKEN_EXPIRED.code, reason: TOKEN_EXPIRED.reason });

    const version = (await owner.thread.get.query({ threadId })).version;
    const again = await RawSocket.open(server.wsUrl, token);
    try {
      for (const [kind, path] of [["mutation", "queue.resume"], ["subscription", "thread.events"]] as const) {
        expect((await again.call(kind, path, { threadId })).error?.data?.code).toBe("UNAUTHORIZED");
      }
    } finally {
      again.close();
    }
    expect((await owner.thread.get.query({ threadId })).version).toBe(version);
  });

  it("an agent's tRPC WebSocket is closed at its token's expiry too", async () => {
    const token = await shortToken("agent", "runner");
    const socket = await RawSocket.open(server.wsUrl, token);
    expect((await socket.call("subscription", "agent.dispatches", {}, { keep: true })).error).toBeNull();
    await Promise.race([socket.whenClosed(), pastExpiry(token).then(() => sleep(2_000))]);
    expect(socket.closed?.code).toBe(TOKEN_EXPIRED.code);
  });

  it("a /yjs WebSocket opened with a short token is closed at its expiry (4501, which y-websocket reconnects after)", async () => {
    const threadId = await newThread();
    const token = await shortToken("user", "alice");
    const ws = new WebSocket(`${server.wsUrl}/yjs/${threadId}?token=${token}`);
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
    let code: number | null = null;
    void closed.then((c) => (code = c));
    await Promise.race([closed, pastExpiry(token).then(() => sleep(2_000))]);
    expect(code).toBe(TOKEN_EXPIRED.code);
    ws.terminate();
  });

  describe("the SDK with a token callback", () => {
    let user: TurnqueueClient | null = null;
    let agent: Agent | null = null;
    afterAll(async () => {
      await agent?.close();
      await user?.close();
    });

    it("createTurnqueueClient renews the token: a subscription, calls and a live queue go on across expiries without a gap", async () => {
      const threadId = await newThread();
      const issued: string[] = [];
      user = createTurnqueueClient({
        url: server.url,
        token: async () => {
          issued.push(await shortToken("user", "alice"));
          return issued.at(-1)!;
        },
      });
      const received: string[] = [];
      const errors: unknown[] = [];
      const subscription = user.thread.events.subscribe({ threadId }, { onData: ({ data }) => received.push(data.type), onError: (e) => errors.push(e) });
      const queue = user.openThreadQueue(threadId);
      await queue.whenSynced();
      const { queueItemId } = await queue.add("first");
      await eventually(() => expect(received).toContain("queue.item-added"));

      // Two expiries: every connection is closed and reopened with a fresh token.
      for (const round of [1, 2]) {
        await pastExpiry(issued.at(-1)!);
        await queue.add(`after expiry ${round}`);
        queue.edit(queueItemId, `edited after expiry ${round}`);
        await queue.flush();
      }
      await eventually(async () => {
        const items = (await owner.thread.get.query({ threadId })).queue.items.map((i) => i.text);
        expect(items).toEqual(["edited after expiry 2", "after expiry 1", "after expiry 2"]);
      });
      await eventually(() => expect(received.filter((t) => t === "queue.item-added")).toHaveLength(3));
      expect(received.filter((t) => t === "thread.created")).toHaveLength(1);
      expect(errors).toEqual([]);
      expect(issued.length).toBeGreaterThanOrEqual(3);
      subscription.unsubscribe();
      queue.close();
    });

    it("runAgent renews the token: dispatches keep coming after its expiry, and the reports are accepted", async () => {
      const threadId = await newThread();
      const issued: string[] = [];
      const ran: string[] = [];
      agent = runAgent({
        url: server.url,
        token: async () => {
          issued.push(await shortToken("agent", "runner"));
          return issued.at(-1)!;
        },
        autoReady: true,
        async onTurn(turn) {
          // Earlier tests' threads of the workspace are drained too; this one is watched.
          if (turn.dispatch.threadId === threadId) ran.push(turn.dispatch.message.text);
          await turn.start();
          return { outcome: "completed" };
        },
      });
      await eventually(async () => expect((await owner.thread.get.query({ threadId })).session.status).toBe("ready"));
      await owner.queue.add.mutate({ threadId, message: { messageId: "m-1", text: "before expiry" } });
      await eventually(() => expect(ran).toEqual(["before expiry"]));

      await pastExpiry(issued.at(-1)!);
      await owner.queue.add.mutate({ threadId, message: { messageId: "m-2", text: "after expiry" } });
      await eventually(() => expect(ran).toEqual(["before expiry", "after expiry"]));
      await eventually(async () => expect((await owner.thread.get.query({ threadId })).queue.items).toEqual([]));
      expect(issued.length).toBeGreaterThanOrEqual(2);
    });

    it("calls made back to back across two expiries all succeed: HTTP with a fresh token near each expiry, the socket again once it reconnects", async () => {
      const threadId = await newThread();
      const issued: string[] = [];
      const client = createTurnqueueClient({
        url: server.url,
        token: async () => {
          issued.push(await shortToken("user", "erin"));
          return issued.at(-1)!;
        },
      });
      try {
        const failures: unknown[] = [];
        let calls = 0;
        let stop = false;
        const calling = (async () => {
          while (!stop) {
            await client.queue.pause.mutate({ threadId }).then(() => calls++, (error: unknown) => failures.push(error));
          }
        })();
        await eventually(() => expect(issued.length).toBeGreaterThanOrEqual(1));
        await pastExpiry(issued[0]);
        await eventually(() => expect(issued.length).toBeGreaterThanOrEqual(2));
        await pastExpiry(issued[1]);
        stop = true;
        await calling;
        expect(failures).toEqual([]);
        expect(calls).toBeGreaterThan(0);
        // The socket reopened with the newest token carries the calls again.
        await eventually(async () => {
          const before = await trpcHttpRequests(server.url);
          await client.queue.resume.mutate({ threadId });
          expect(await trpcHttpRequests(server.url)).toBe(before);
        });
      } finally {
        await client.close();
      }
    });
  });
});

