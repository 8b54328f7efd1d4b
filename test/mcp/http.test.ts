import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MCP_LIMITS } from "../../src/mcp/queue-tools.js";
import { startTestServer, type TestServer } from "../support/server.js";

/** The MCP SDK's own client on the server's /mcp, signed in with a bearer token. */
async function connect(server: TestServer, token: string): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: "turnqueue-http-test", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

const call = async (client: Client, name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult;
const value = <T>(result: CallToolResult): T => {
  expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
  return result.structuredContent as T;
};
const errorText = (result: CallToolResult): string => {
  expect(result.isError).toBe(true);
  return (result.content[0] as { text: string }).text;
};

interface Shown {
  paused: boolean;
  items: { queueItemId: string; text: string; status: string }[];
  moreItems: number;
}

describe("/mcp: the queue tools over streamable HTTP on the server (the MCP SDK's own client)", { timeout: 300_000 }, () => {
  let server: TestServer;
  let client: Client;
  let threadId: string;

  beforeAll(async () => {
    server = await startTestServer();
    client = await connect(server, await server.token("user", "mcp-http"));
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it("serves the same tools as turnqueue mcp", async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      ["add_to_queue", "edit_queue_item", "list_threads", "move_queue_item", "pause_queue", "queue_status", "remove_queue_item", "resume_queue", "retry_queue_item", "send_now", "show_queue"].sort(),
    );
  });

  it("the token's workspace: list_threads shows only its threads, another workspace's thread is unknown", async () => {
    const user = await server.token("user", "mcp-http");
    const other = await server.token("user", "elsewhere");
    const create = (token: string, title: string) =>
      fetch(`${server.url}/api/v1/threads`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: JSON.stringify({ title }) }).then(
        async (r) => ((await r.json()) as { threadId: string }).threadId,
      );
    threadId = await create(user, "mine");
    const theirs = await create(other, "not mine");
    const listed = value<{ threads: { threadId: string; title: string }[] }>(await call(client, "list_threads", {}));
    expect(listed.threads.map((t) => t.title)).toEqual(["mine"]);
    expect(errorText(await call(client, "show_queue", { threadId: theirs }))).toMatch(/^THREAD_NOT_FOUND: /);
  });

  it("add (the idempotency key makes a retry the same item), move, edit, pause: show_queue follows", async () => {
    const first = value<{ queueItemId: string }>(await call(client, "add_to_queue", { threadId, text: "run the tests", idempotencyKey: "h-1" }));
    expect(value<{ queueItemId: string }>(await call(client, "add_to_queue", { threadId, text: "run the tests", idempotencyKey: "h-1" })).queueItemId).toBe(first.queueItemId);
    const second = value<{ queueItemId: string }>(await call(client, "add_to_queue", { threadId, text: "fix lint" }));
    value(await call(client, "pause_queue", { threadId, idempotencyKey: "pause-1" }));
    value(await call(client, "move_queue_item", { threadId, queueItemId: second.queueItemId, afterId: null, idempotencyKey: "move-1" }));
    // The same key again is the same change: nothing moves twice, nothing is refused.
    value(await call(client, "move_queue_item", { threadId, queueItemId: second.queueItemId, afterId: null, idempotencyKey: "move-1" }));
    value(await call(client, "edit_queue_item", { threadId, queueItemId: first.queueItemId, text: "run the tests, then push" }));
    const shown = value<Shown>(await call(client, "show_queue", { threadId }));
    expect(shown.paused).toBe(true);
    expect(shown.items.map((i) => i.text)).toEqual(["fix lint", "run the tests, then push"]);
    const { version } = (await (await fetch(`${server.url}/api/v1/threads/${threadId}`, { headers: { authorization: `Bearer ${await server.token("user", "mcp-http")}` } })).json()) as { version: number };
    // created, two adds, pause, one move, one edit.
    expect(version).toBe(6);
  });

  it("answers are bounded: long texts are clipped", async () => {
    await call(client, "add_to_queue", { threadId, text: "y".repeat(5_000), idempotencyKey: "long" });
    const shown = value<Shown>(await call(client, "show_queue", { threadId }));
    const long = shown.items.find((i) => i.text.startsWith("yyy"))!;
    expect(long.text.length).toBeLessThan(MCP_LIMITS.textChars + 40);
    expect(long.text).toMatch(/… \(5000 characters\)$/);
  });

  it("bad input and refusals are tool errors with the stable reason, changing nothing", async () => {
    await call(client, "add_to_queue", { threadId, text: "first text", idempotencyKey: "reused" });
    const before = value<Shown>(await call(client, "show_queue", { threadId }));
    expect(errorText(await call(client, "remove_queue_item", { threadId, queueItemId: "qi_missing" }))).toMatch(/^ITEM_NOT_FOUND: /);
    expect(errorText(await call(client, "add_to_queue", { threadId, text: "other text", idempotencyKey: "reused" }))).toMatch(/^MESSAGE_ID_REUSED: /);
    expect(value<Shown>(await call(client, "show_queue", { threadId }))).toEqual(before);
  });

  it("the token's role: an agent token may not change a user's queue", async () => {
    const agent = await connect(server, await server.token("agent", "mcp-http"));
    try {
      expect(errorText(await call(agent, "pause_queue", { threadId }))).toMatch(/^FORBIDDEN: role agent may not call this procedure/);
    } finally {
      await agent.close();
    }
  });

  it("no token, or a token we did not sign, is 401 before any tool runs; GET is 405", async () => {
    const initialize = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "curl", version: "1" } } };
    for (const headers of [{}, { authorization: "Bearer not-a-token" }] as Record<string, string>[]) {
      const answer = await fetch(`${server.url}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
        body: JSON.stringify(initialize),
      });
      expect(answer.status).toBe(401);
      expect(answer.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(((await answer.json()) as { error: { message: string } }).error.message).toMatch(/token is required/);
    }
    expect((await fetch(`${server.url}/mcp`)).status).toBe(405);
    await expect(connect(server, "not-a-token")).rejects.toThrow(/a valid token is required/);
  });
});
