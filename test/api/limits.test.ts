import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";
import { httpCall, RawSocket } from "../support/trpc-raw.js";
import { rawConnect } from "../collab/harness.js";
import { connect, uid, type Client } from "../support/clients.js";
import { eventually } from "../support/poll.js";

const limits = { maxBodyBytes: 64 * 1024, maxBatchSize: 4, maxSubscriptionsPerConnection: 3, maxConnectionsPerToken: 2 };

/** Retries `attempt` until `ok` holds (its last value is then the test's to assert): the server frees a slot once it has processed a close or a stop. */
const retried = <T>(attempt: () => Promise<T>, ok: (value: T) => boolean): Promise<T> =>
  eventually(async () => {
    const value = await attempt();
    if (!ok(value)) throw Object.assign(new Error("not yet"), { value });
    return value;
  });

describe("limits per body, batch, connection and token, each refused with a clear error", () => {
  let server: TestServer;
  let user: Client;
  let token: string;
  let threadId: string;

  beforeAll(async () => {
    server = await startTestServer({ config: { limits } });
    token = await server.token("user", "local", "alice");
    user = connect(server, token);
    threadId = (await user.thread.create.mutate({})).threadId;
  });
  afterAll(async () => {
    user?.close();
    await server?.close();
  });

  const version = async () => (await user.thread.get.query({ threadId })).version;

  it("a body announced over the limit is 413 PAYLOAD_TOO_LARGE, and nothing of it runs", async () => {
    const before = await version();
    const answer = await httpCall(server.url, token, "mutation", "queue.add", { threadId, message: { messageId: "big", text: "x".repeat(70_000) } });
    expect(answer.status).toBe(413);
    expect(answer.error?.data?.code).toBe("PAYLOAD_TOO_LARGE");
    expect(await version()).toBe(before);
  });

  it("a streamed body with no length is refused once it passes the limit, not read to its end", async () => {
    const CAP = 100 << 20;
    const chunk = Buffer.alloc(64 * 1024, "x");
    const { status, sent } = await new Promise<{ status: number; sent: number }>((resolve, reject) => {
      let sent = 0;
      let answered = false;
      const req = http.request(`${server.url}/trpc/queue.pause`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "transfer-encoding": "chunked" },
      });
      req.on("response", (res) => {
        answered = true;
        res.resume();
        resolve({ status: res.statusCode ?? 0, sent });
      });
      // The server closes the connection after its answer: a client still writing may see
      // the cut (EPIPE, ECONNRESET) before it reads the 413.
      req.on("error", (error: NodeJS.ErrnoException) => {
        if (answered) return;
        answered = true;
        if (error.code === "EPIPE" || error.code === "ECONNRESET") resolve({ status: -1, sent });
        else reject(error);
      });
      const pump = () => {
        while (!answered && sent < CAP) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once("drain", pump);
        }
        if (!answered) req.end();
      };
      req.write('{"threadId":"');
      pump();
    });
    expect([413, -1]).toContain(status);
    // What the server took before refusing is the limit plus what sockets buffer, far from the cap.
    expect(sent).toBeLessThan(32 << 20);
  });

  it(`a batch of more than ${limits.maxBatchSize} calls is BAD_REQUEST as a whole, over HTTP and WebSocket, and nothing of it runs`, async () => {
    const before = await version();
    const paths = Array.from({ length: 5 }, (_, i) => (i % 2 ? "queue.resume" : "queue.pause"));
    const body = Object.fromEntries(paths.map((_, i) => [String(i), { threadId }]));
    const response = await fetch(`${server.url}/trpc/${paths.join(",")}?batch=1`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(400);
    expect(JSON.stringify(await response.json())).toContain("Batch call exceeds maximum size");

    const socket = await RawSocket.open(server.wsUrl, token);
    try {
      const answers = await socket.batch(paths.map((path) => ({ kind: "mutation" as const, path, input: { threadId } })));
      expect(answers.map((a) => a.error?.data?.code)).toEqual(paths.map(() => "BAD_REQUEST"));
      // A batch at the limit runs.
      const within = await socket.batch([{ kind: "query", path: "thread.get", input: { threadId } }]);
      expect(within[0].error).toBeNull();
    } finally {
      socket.close();
    }
    expect(await version()).toBe(before);
  });

  it(`a WebSocket holds at most ${limits.maxSubscriptionsPerConnection} subscriptions: one more is TOO_MANY_REQUESTS, and stopping one frees its slot`, async () => {
    const socket = await RawSocket.open(server.wsUrl, token);
    try {
      const open = [];
      for (let i = 0; i < limits.maxSubscriptionsPerConnection; i++) {
        const started = await socket.call("subscription", "thread.events", { threadId }, { keep: true });
        expect(started.error).toBeNull();
        open.push(started.id);
      }
      const refused = await socket.call("subscription", "thread.events", { threadId });
      expect(refused.error?.data?.code).toBe("TOO_MANY_REQUESTS");
      expect(refused.error?.message).toContain(`at most ${limits.maxSubscriptionsPerConnection} subscriptions`);
      // Queries and mutations are not subscriptions: they still answer.
      expect((await socket.call("query", "thread.get", { threadId })).error).toBeNull();

      socket.stop(open[0]);
      const again = await retried(
        () => socket.call("subscription", "thread.events", { threadId }, { keep: true }),
        (a) => a.error === null,
      );
      expect(again.error).toBeNull();
    } finally {
      socket.close();
    }
  });

  it(`a token uses at most ${limits.maxConnectionsPerToken} WebSockets: calls on one more are TOO_MANY_REQUESTS, other tokens are not affected, and closing one frees its slot`, async () => {
    // A token no other test (nor the harness's client) holds sockets with.
    const token = await server.token("user", "local", "carol");
    const sockets = [await RawSocket.open(server.wsUrl, token), await RawSocket.open(server.wsUrl, token)];
    try {
      for (const socket of sockets) expect((await socket.call("query", "thread.get", { threadId })).error).toBeNull();
      const extra = await RawSocket.open(server.wsUrl, token);
      sockets.push(extra);
      const refused = await extra.call("subscription", "thread.events", { threadId });
      expect(refused.error?.data?.code).toBe("TOO_MANY_REQUESTS");
      expect(refused.error?.message).not.toContain(token);

      const bob = await RawSocket.open(server.wsUrl, await server.token("user", "local", "bob"));
      sockets.push(bob);
      expect((await bob.call("query", "thread.get", { threadId })).error).toBeNull();

      sockets[0].close();
      await sockets[0].whenClosed();
      const answer = await retried(
        async () => {
          const next = await RawSocket.open(server.wsUrl, token);
          sockets.push(next);
          return next.call("query", "thread.get", { threadId });
        },
        (a) => a.error === null,
      );
      expect(answer.error).toBeNull();
    } finally {
      for (const socket of sockets) socket.close();
    }
  });

  it(`/yjs shares the token's budget of ${limits.maxConnectionsPerToken} connections with /trpc: one more document socket is refused (429) before any byte, and closing a socket frees its slot`, async () => {
    const token = await server.token("user", "local", "dave");
    const trpc = await RawSocket.open(server.wsUrl, token);
    expect((await trpc.call("query", "thread.get", { threadId })).error).toBeNull();
    const doc = rawConnect(server, threadId, token);
    const extra = rawConnect(server, threadId, token);
    try {
      expect(await doc.outcome).toEqual({ opened: true });
      expect(await extra.outcome).toEqual({ refused: 429 });
      // The tRPC door counts the /yjs socket too: a second tRPC socket is one too many.
      const second = await RawSocket.open(server.wsUrl, token);
      expect((await second.call("query", "thread.get", { threadId })).error?.data?.code).toBe("TOO_MANY_REQUESTS");
      second.close();
      await second.whenClosed();

      doc.ws.close();
      await doc.closed;
      const next = await retried(
        async () => {
          const attempt = rawConnect(server, threadId, token);
          const outcome = await attempt.outcome;
          if ("refused" in outcome) attempt.ws.terminate();
          else attempt.ws.close();
          return outcome;
        },
        (outcome) => "opened" in outcome,
      );
      expect(next).toEqual({ opened: true });
    } finally {
      trpc.close();
      doc.ws.terminate();
      extra.ws.terminate();
    }
  });

  it("a WebSocket message over the limit closes that socket (1009); the server keeps serving", async () => {
    const socket = await RawSocket.open(server.wsUrl, token);
    socket.ws.send(JSON.stringify({ id: 1, method: "query", params: { path: "thread.get", input: { threadId, pad: "x".repeat(70_000) } } }));
    expect((await socket.whenClosed()).code).toBe(1009);
    expect((await user.thread.get.query({ threadId })).threadId).toBe(threadId);
  });
});
