import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MCP_LIMITS } from "../../src/mcp/queue-tools.js";
import { cleanEnv, repoRoot } from "../server/process.js";
import { readmeBlocks } from "../support/readme.js";
import { startTestServer, type TestServer } from "../support/server.js";

interface McpServerConfig {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** The MCP client configuration README.md's "Let agents reach the queue" section shows. */
async function readmeConfig(): Promise<McpServerConfig> {
  const [block] = await readmeBlocks("Let agents reach the queue (MCP)", "json");
  return (JSON.parse(block!) as { mcpServers: { turnqueue: McpServerConfig } }).mcpServers.turnqueue;
}

/**
 * The README's configuration as an agent runs it: its command and arguments (`turnqueue`
 * from the sources here) with its variables, pointed at the test server.
 */
async function connect(server: TestServer, token: string): Promise<Client> {
  const config = await readmeConfig();
  expect(config.command).toBe("turnqueue");
  expect(Object.keys(config.env).sort()).toEqual(["TURNQUEUE_TOKEN", "TURNQUEUE_URL"]);
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ["--import", "tsx", "src/cli.ts", ...config.args],
    cwd: repoRoot,
    env: cleanEnv({ TURNQUEUE_URL: server.url, TURNQUEUE_TOKEN: token }) as Record<string, string>,
    stderr: "inherit",
  });
  const client = new Client({ name: "turnqueue-test", version: "1.0.0" });
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

describe("turnqueue mcp: the queue as MCP tools over stdio (the MCP SDK's own client)", { timeout: 600_000 }, () => {
  let server: TestServer;
  let client: Client;
  let threadId: string;

  beforeAll(async () => {
    server = await startTestServer();
    client = await connect(server, await server.token("user", "mcp"));
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it("lists the queue tools", async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      ["add_to_queue", "edit_queue_item", "list_threads", "move_queue_item", "pause_queue", "queue_status", "remove_queue_item", "resume_queue", "retry_queue_item", "send_now", "show_queue"].sort(),
    );
    expect(tools.find((t) => t.name === "add_to_queue")?.inputSchema.required).toEqual(["threadId", "text"]);
  });

  it("list_threads shows only the token's workspace", async () => {
    const user = await server.token("user", "mcp");
    const other = await server.token("user", "elsewhere");
    const create = (token: string, title: string) =>
      fetch(`${server.url}/trpc/thread.create`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ title }),
      }).then(async (r) => ((await r.json()) as { result: { data: { threadId: string } } }).result.data.threadId);
    threadId = await create(user, "mine");
    await create(other, "not mine");
    const listed = value<{ threads: { threadId: string; title: string }[] }>(await call(client, "list_threads", {}));
    expect(listed.threads.map((t) => t.title)).toEqual(["mine"]);
  });

  it("add (idempotent by key), move, edit, pause, resume, remove: show_queue follows each change", async () => {
    const first = value<{ queueItemId: string }>(await call(client, "add_to_queue", { threadId, text: "run the tests", idempotencyKey: "m-1" }));
    expect(value<{ queueItemId: string }>(await call(client, "add_to_queue", { threadId, text: "run the tests", idempotencyKey: "m-1" })).queueItemId).toBe(first.queueItemId);
    const second = value<{ queueItemId: string }>(await call(client, "add_to_queue", { threadId, text: "fix lint" }));
    value(await call(client, "pause_queue", { threadId }));
    value(await call(client, "move_queue_item", { threadId, queueItemId: second.queueItemId, afterId: null, idempotencyKey: "move-1" }));
    value(await call(client, "edit_queue_item", { threadId, queueItemId: first.queueItemId, text: "run the tests, then push" }));
    let shown = value<Shown>(await call(client, "show_queue", { threadId }));
    expect(shown.paused).toBe(true);
    expect(shown.items.map((i) => i.text)).toEqual(["fix lint", "run the tests, then push"]);
    expect(value<{ state: string; position: number }>(await call(client, "queue_status", { threadId, messageId: "m-1" }))).toMatchObject({ state: "queued", position: 2 });

    value(await call(client, "remove_queue_item", { threadId, queueItemId: second.queueItemId }));
    value(await call(client, "resume_queue", { threadId }));
    shown = value<Shown>(await call(client, "show_queue", { threadId }));
    expect(shown.paused).toBe(false);
    expect(shown.items.map((i) => i.queueItemId)).toEqual([first.queueItemId]);
  });

  it("answers are bounded: long texts are clipped and at most a page of items is listed", async () => {
    await call(client, "pause_queue", { threadId });
    await call(client, "add_to_queue", { threadId, text: "x".repeat(5_000) });
    for (let i = 0; i < MCP_LIMITS.items; i++) await call(client, "add_to_queue", { threadId, text: `item ${i}`, idempotencyKey: `bulk-${i}` });
    const shown = value<Shown>(await call(client, "show_queue", { threadId }));
    expect(shown.items).toHaveLength(MCP_LIMITS.items);
    expect(shown.moreItems).toBe(2);
    expect(shown.items[1].text.length).toBeLessThan(MCP_LIMITS.textChars + 40);
    expect(shown.items[1].text).toMatch(/… \(5000 characters\)$/);
  });

  it("refusals and unknown ids come back as tool errors with the stable reason, changing nothing", async () => {
    expect(errorText(await call(client, "show_queue", { threadId: "no-such-thread" }))).toMatch(/^THREAD_NOT_FOUND: /);
    await call(client, "add_to_queue", { threadId, text: "first text", idempotencyKey: "reused" });
    const before = value<Shown>(await call(client, "show_queue", { threadId }));
    expect(errorText(await call(client, "remove_queue_item", { threadId, queueItemId: "qi_missing" }))).toMatch(/^ITEM_NOT_FOUND: /);
    // A message id names one text for ever.
    expect(errorText(await call(client, "add_to_queue", { threadId, text: "other text", idempotencyKey: "reused" }))).toMatch(/^MESSAGE_ID_REUSED: /);
    expect(value<Shown>(await call(client, "show_queue", { threadId }))).toEqual(before);
  });

  it("the token's role is enforced: an agent token may not change a user's queue", async () => {
    const agent = await connect(server, await server.token("agent", "mcp"));
    try {
      expect(errorText(await call(agent, "pause_queue", { threadId }))).toMatch(/^FORBIDDEN: role agent may not call this procedure/);
    } finally {
      await agent.close();
    }
  });
});
