import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hasPostgres } from "../support/postgres.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { connect, codeOf } from "../support/clients.js";

const metricsText = async (server: TestServer) => (await fetch(`${server.url}/metrics`)).text();

describe("startTurnqueue (embedded PGlite, port 0)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it("reports the port it really listens on", async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
    expect(server.wsUrl).toBe(server.url.replace("http", "ws"));
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ status: "ok" });
  });

  it("counts commands by type and outcome in /metrics, refusals apart from successes", async () => {
    const api = connect(server, await server.token());
    const { threadId } = await api.thread.create.mutate({ threadId: "metrics-thread" });
    await api.queue.add.mutate({ threadId, message: { messageId: "m1", text: "hello" } });
    await api.queue.add.mutate({ threadId, message: { messageId: "m1", text: "hello" } });
    const reused = await api.queue.add.mutate({ threadId, message: { messageId: "m1", text: "other" } }).catch((e: unknown) => e);
    expect(codeOf(reused)).toBe("CONFLICT");

    const text = await metricsText(server);
    expect(text).toMatch(/turnqueue_commands_total\{type="thread.create",outcome="ok"\} 1\n/);
    expect(text).toMatch(/turnqueue_commands_total\{type="queue.add",outcome="refused"\} 1\n/);
    expect(text).toMatch(/turnqueue_command_duration_seconds_count\{type="queue.add"\} 3\n/);
    expect(text).toMatch(/turnqueue_http_requests_total\{door="trpc",status="409"\} 1\n/);
  });

  it("counts open WebSockets by door and refuses upgrades on paths nobody serves", async () => {
    const ws = new WebSocket(`${server.wsUrl}/trpc`);
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    expect(await metricsText(server)).toMatch(/turnqueue_websocket_connections\{door="trpc"\} 1\n/);
    ws.close();
    await new Promise((resolve) => ws.once("close", resolve));

    const stray = new WebSocket(`${server.wsUrl}/nowhere`);
    const refused = await new Promise<Error>((resolve) => stray.once("error", resolve));
    expect(refused.message).toMatch(/404/);
  });
});

describe.each([
  { database: "pglite" as const, run: true },
  { database: "postgres" as const, run: hasPostgres },
])("close() while commands are in flight (in-process, $database)", ({ database, run }) => {
  it.runIf(run)("answers or refuses each command; after a restart on the same data every answered one is there", async () => {
    let server = await startTestServer({ database });
    try {
      const api = connect(server, await server.token());
      const { threadId } = await api.thread.create.mutate({ threadId: "closing" });
      const sent = Array.from({ length: 30 }, (_, i) => `m${i}`);
      const results = sent.map((messageId) =>
        api.queue.add.mutate({ threadId, message: { messageId, text: `text of ${messageId}` } }).then(
          () => messageId,
          () => null,
        ),
      );
      await results[0];
      const closing = server.restart();
      const answered = (await Promise.all(results)).filter((m): m is string => m !== null);
      server = await closing;

      const after = connect(server, await server.token());
      const items = (await after.thread.get.query({ threadId })).queue.items;
      expect(answered.length).toBeGreaterThan(0);
      for (const messageId of answered) {
        expect(items.find((i) => i.messageId === messageId)?.text).toBe(`text of ${messageId}`);
      }
      expect(new Set(items.map((i) => i.messageId)).size).toBe(items.length);
    } finally {
      await server.close();
    }
  }, 180_000);
});
