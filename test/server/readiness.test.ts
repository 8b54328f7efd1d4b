import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, hasPostgres } from "../support/postgres.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { connect, codeOf } from "../support/clients.js";
import { startTcpProxy } from "./tcp-proxy.js";

const ready = async (server: TestServer) => {
  const res = await fetch(`${server.url}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; error?: string } };
};

describe.runIf(hasPostgres)("/readyz on PostgreSQL through a TCP relay that is cut (fault injected by the relay)", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
  let server: TestServer;

  beforeAll(async () => {
    database = await createTestDatabase();
    const direct = new URL(database.url);
    proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    const relayed = new URL(database.url);
    relayed.hostname = "127.0.0.1";
    relayed.port = String(proxy.port);
    server = await startTestServer({ config: { databaseUrl: relayed.toString() } });
  });
  afterAll(async () => {
    await server?.close();
    await proxy?.close();
    await database?.drop();
  });

  it("is ready; not ready (503) while the database is unreachable, commands failing fast with SERVICE_UNAVAILABLE; ready again once it is back", async () => {
    expect(await ready(server)).toEqual({ status: 200, body: { status: "ready" } });
    const api = connect(server, await server.token());
    const { threadId } = await api.thread.create.mutate({ title: "before" });

    await proxy.cut();
    const down = await ready(server);
    expect(down.status).toBe(503);
    expect(down.body.status).toBe("unavailable");
    expect(codeOf(await api.queue.add.mutate({ threadId, message: { messageId: "m1", text: "while down" } }).catch((e: unknown) => e))).toBe(
      "SERVICE_UNAVAILABLE",
    );
    // Liveness is not readiness: the process itself is fine.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

    await proxy.restore();
    expect(await ready(server)).toEqual({ status: 200, body: { status: "ready" } });
    await api.queue.add.mutate({ threadId, message: { messageId: "m1", text: "after" } });
    const items = (await api.thread.get.query({ threadId })).queue.items;
    expect(items.map((i) => i.text)).toEqual(["after"]);
  });
});
