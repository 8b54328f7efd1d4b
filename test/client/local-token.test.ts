import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTurnqueueClient } from "../../client/index.js";
import { hasPostgres } from "../support/postgres.js";
import { startTestServer, type TestServer } from "../support/server.js";

/** GET /local-token with a chosen Host header (what a browser sends, or a DNS-rebinding page). */
function getLocalToken(url: string, host?: string): Promise<{ status: number; body: { token?: string } }> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${url}/local-token`, { headers: host ? { host } : {} }, (response) => {
      let body = "";
      response.on("data", (chunk) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode!, body: JSON.parse(body) }));
    });
    request.on("error", reject);
  });
}

describe("/local-token: the board signs in the local user of the embedded default", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it("gives a loopback visitor a user token of the local workspace", async () => {
    const { status, body } = await getLocalToken(server.url);
    expect(status).toBe(200);
    const local = createTurnqueueClient({ url: server.url, token: body.token! });
    try {
      const { threadId } = await local.thread.create.mutate({ title: "mine" });
      expect(await server.services.auth.verify(body.token)).toMatchObject({ sub: "local", workspaceId: "local", role: "user" });
      expect((await local.thread.list.query({})).items.map((t) => t.threadId)).toContain(threadId);
    } finally {
      await local.close();
    }
  });

  it("refuses a request whose Host is not loopback (a DNS-rebinding page), with no token", async () => {
    const port = new URL(server.url).port;
    for (const host of [`evil.example:${port}`, `192.168.1.20:${port}`]) {
      const { status, body } = await getLocalToken(server.url, host);
      expect(status).toBe(404);
      expect(body.token).toBeUndefined();
    }
  });
});

describe.runIf(hasPostgres)("/local-token on a shared (PostgreSQL) deployment", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ database: "postgres" });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("does not exist: every user signs in with their own token", async () => {
    const { status, body } = await getLocalToken(server.url);
    expect(status).toBe(404);
    expect(body.token).toBeUndefined();
  });
});
