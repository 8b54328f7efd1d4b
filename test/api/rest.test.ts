import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { catalogue } from "./catalogue.js";
import { cleanEnv, repoRoot } from "../server/process.js";
import { readmeBlocks } from "../support/readme.js";
import { startTestServer, type TestServer } from "../support/server.js";

interface ErrorBody {
  error: { code: string; message: string; reason: string | null; issues: { fieldErrors: Record<string, string[]> } | null };
}

// Plain fetch, as a client in any language would call it: no tRPC envelope anywhere.
describe("REST door /api/v1 (plain JSON onto the tRPC procedures) and its OpenAPI document", { timeout: 120_000 }, () => {
  let server: TestServer;
  let token: string;
  const api = (path: string, init: { method?: string; body?: unknown; token?: string | null } = {}) =>
    fetch(`${server.url}/api/v1${path}`, {
      method: init.method ?? "GET",
      headers: {
        ...(init.body === undefined ? {} : { "content-type": "application/json" }),
        ...(init.token === null ? {} : { authorization: `Bearer ${init.token ?? token}` }),
      },
      body: init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body),
    });

  beforeAll(async () => {
    server = await startTestServer();
    token = await server.token("user", "rest");
  });
  afterAll(async () => {
    await server?.close();
  });

  it("/api/v1/openapi.json is a valid OpenAPI 3.1 document naming every route", async () => {
    const response = await fetch(`${server.url}/api/v1/openapi.json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    const result = await new Validator().validate(document as never);
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(document.openapi).toBe("3.1.0");
    expect(Object.keys(document.paths)).toContain("/threads/{threadId}/queue/{queueItemId}/move");
    expect(Object.keys(document.paths["/threads/{threadId}/queue"])).toEqual(["post"]);
  });

  it("creates a thread, queues (messageId generated when absent), edits, moves, pauses, resumes and removes", async () => {
    const created = await api("/threads", { method: "POST", body: { title: "over REST" } });
    expect(created.status).toBe(200);
    const { threadId } = (await created.json()) as { threadId: string };

    const first = (await (await api(`/threads/${threadId}/queue`, { method: "POST", body: { text: "run the tests" } })).json()) as { queueItemId: string; status: string };
    expect(first.status).toBe("pending");
    const keyed = { text: "fix lint", messageId: "lint-1" };
    const second = (await (await api(`/threads/${threadId}/queue`, { method: "POST", body: keyed })).json()) as { queueItemId: string };
    // The client's messageId is the idempotency key: the same message again is the same item.
    expect(await (await api(`/threads/${threadId}/queue`, { method: "POST", body: keyed })).json()).toEqual({ queueItemId: second.queueItemId, status: "pending" });

    expect((await api(`/threads/${threadId}/pause`, { method: "POST" })).status).toBe(200);
    expect((await api(`/threads/${threadId}/queue/${second.queueItemId}/move`, { method: "POST", body: { afterId: null } })).status).toBe(200);
    expect((await api(`/threads/${threadId}/queue/${first.queueItemId}`, { method: "PATCH", body: { text: "run the tests, then push" } })).status).toBe(200);
    let snapshot = (await (await api(`/threads/${threadId}`)).json()) as { queue: { paused: boolean; items: { queueItemId: string; text: string }[] } };
    expect(snapshot.queue.paused).toBe(true);
    expect(snapshot.queue.items.map((i) => i.text)).toEqual(["fix lint", "run the tests, then push"]);

    expect((await api(`/threads/${threadId}/queue/${second.queueItemId}`, { method: "DELETE" })).status).toBe(200);
    expect((await api(`/threads/${threadId}/resume`, { method: "POST" })).status).toBe(200);
    snapshot = (await (await api(`/threads/${threadId}`)).json()) as typeof snapshot;
    expect(snapshot.queue.paused).toBe(false);
    expect(snapshot.queue.items.map((i) => i.queueItemId)).toEqual([first.queueItemId]);

    const listed = (await (await api("/threads?limit=10")).json()) as { items: { threadId: string }[] };
    expect(listed.items.map((t) => t.threadId)).toEqual([threadId]);
  });

  it("every user-side query and mutation of the router has a route, derived from the router (a new procedure needs no REST code)", async () => {
    const document = (await (await fetch(`${server.url}/api/v1/openapi.json`)).json()) as { paths: Record<string, Record<string, { operationId: string }>> };
    const operations = Object.values(document.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId.replace("_", ".")));
    const userSide = catalogue.filter((p) => p.role === "user" && p.kind !== "subscription").map((p) => p.path);
    expect(operations.sort()).toEqual(userSide.sort());
    expect(document.paths["/threads/{threadId}/interrupt"]?.post?.operationId).toBe("thread_interrupt");
  });

  it("thread.interrupt and thread.archive over REST; a query's numbers come from its query string by the input schema", async () => {
    const { threadId } = (await (await api("/threads", { method: "POST", body: { title: "interrupt me" } })).json()) as { threadId: string };
    // No turn runs: the refusal carries its stable reason, as on /trpc.
    const interrupted = await api(`/threads/${threadId}/interrupt`, { method: "POST" });
    expect(interrupted.status, await interrupted.clone().text()).toBe(409);
    expect(((await interrupted.json()) as ErrorBody).error.reason).toMatch(/^[A-Z_]+$/);
    expect(await (await api(`/threads/${threadId}/archive`, { method: "POST", body: { commandId: "archive-1" } })).json()).toEqual({ version: 2 });
    const badLimit = await api("/threads?limit=many");
    expect(badLimit.status).toBe(400);
    expect(Object.keys(((await badLimit.json()) as ErrorBody).error.issues?.fieldErrors ?? {})).toEqual(["limit"]);
    expect(((await (await api("/threads?limit=1")).json()) as { items: unknown[] }).items).toHaveLength(1);
    expect((await api("/threads/%E0%A4%A")).status).toBe(400);
  });

  it("a refused REST call is counted in turnqueue_refusals_total{door=\"rest\"}, as the tRPC door's are", async () => {
    const count = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return Number(/turnqueue_refusals_total\{door="rest",reason="UNAUTHORIZED"\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    const before = await count();
    expect((await api("/threads", { token: "not-a-token" })).status).toBe(401);
    expect(await count()).toBe(before + 1);
  });

  it("errors are readable JSON with the HTTP status of their kind, and change nothing", async () => {
    const { threadId } = (await (await api("/threads", { method: "POST", body: { title: "errors" } })).json()) as { threadId: string };

    const invalid = await api(`/threads/${threadId}/queue`, { method: "POST", body: { text: 42 } });
    expect(invalid.status).toBe(400);
    const invalidBody = (await invalid.json()) as ErrorBody;
    expect(invalidBody.error.code).toBe("BAD_REQUEST");
    expect(Object.keys(invalidBody.error.issues?.fieldErrors ?? {})).toEqual(["text"]);

    const unknownField = await api(`/threads/${threadId}/queue/qi_x`, { method: "PATCH", body: { text: "x", extra: true } });
    expect(unknownField.status).toBe(400);

    const notJson = await api(`/threads/${threadId}/pause`, { method: "POST", body: "{not json" });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as ErrorBody).error.code).toBe("PARSE_ERROR");

    // No turn runs: stopping one is refused, with the stable reason.
    const { threadId: idle } = (await (await api("/threads", { method: "POST", body: { title: "no agent" } })).json()) as { threadId: string };
    const refused = await api(`/threads/${idle}/interrupt`, { method: "POST" });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as ErrorBody).error.reason).toBe("NO_ACTIVE_TURN");

    const missing = await api("/threads/no-such-thread");
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as ErrorBody).error.reason).toBe("THREAD_NOT_FOUND");

    expect((await api("/threads", { token: null })).status).toBe(401);
    expect((await api(`/threads/${threadId}/pause`, { method: "POST", token: await server.token("agent", "rest") })).status).toBe(403);
    expect((await api("/nowhere")).status).toBe(404);
    expect((await api("/threads", { method: "DELETE" })).status).toBe(405);

    const snapshot = (await (await api(`/threads/${threadId}`)).json()) as { version: number; queue: { paused: boolean; items: unknown[] } };
    expect(snapshot).toMatchObject({ version: 1, queue: { paused: false, items: [] } });
  });

  it('README "Call it over plain HTTP (REST)": the curl block runs as written', async () => {
    const [block] = await readmeBlocks("Call it over plain HTTP (REST)", "sh");
    const env = cleanEnv({ TURNQUEUE_URL: server.url, TURNQUEUE_TOKEN: await server.token("user", "readme-rest") });
    const { stdout } = await promisify(execFile)("bash", ["-c", `set -euo pipefail\n${block}`], { cwd: repoRoot, env });
    expect(stdout).toMatch(/^\{"queueItemId":"qi_[^"]+","status":"pending"\}/);
    expect(stdout).toMatch(/"title":"From curl"/);
    expect(stdout).toMatch(/"text":"Run the tests"/);
    expect(stdout).toContain('"openapi":"3.1.0"');
  });

  it("CORS: only the origins given by --cors-origin get the headers, and a preflight is answered", async () => {
    // This suite's server allows no origin (the default).
    const closed = await fetch(`${server.url}/api/v1/threads`, { headers: { origin: "https://app.example", authorization: `Bearer ${token}` } });
    expect(closed.headers.get("access-control-allow-origin")).toBeNull();

    const open = await startTestServer({ config: { corsOrigins: ["https://app.example"] } });
    try {
      const preflight = await fetch(`${open.url}/api/v1/threads`, {
        method: "OPTIONS",
        headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get("access-control-allow-origin")).toBe("https://app.example");
      expect(preflight.headers.get("access-control-allow-headers")).toBe("authorization, content-type");
      const listed = await fetch(`${open.url}/trpc/thread.list`, { headers: { origin: "https://app.example", authorization: `Bearer ${await open.token()}` } });
      expect(listed.status).toBe(200);
      expect(listed.headers.get("access-control-allow-origin")).toBe("https://app.example");
      const other = await fetch(`${open.url}/api/v1/threads`, { headers: { origin: "https://evil.example", authorization: `Bearer ${await open.token()}` } });
      expect(other.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await open.close();
    }
  });

  it("a --cors-origin that is not an origin stops the start with a message naming the flag", async () => {
    await expect(loadConfig({ env: {}, flags: { corsOrigin: "https://app.example/path", secret: "s".repeat(32) } })).rejects.toThrow(
      /--cors-origin \/ TURNQUEUE_CORS_ORIGIN.*must list origins/,
    );
    expect((await loadConfig({ env: { TURNQUEUE_CORS_ORIGIN: "https://a.example, http://127.0.0.1:5173" }, flags: { secret: "s".repeat(32) } })).corsOrigins).toEqual([
      "https://a.example",
      "http://127.0.0.1:5173",
    ]);
  });
});
