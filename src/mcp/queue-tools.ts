import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import type { TurnqueueClient } from "../../client/index.js";
import { Delivery, Id, MAX_TEXT_LENGTH } from "../domain/primitives.js";

/** What a tool answers at most: an agent's context is small, a queue may not be. */
export const MCP_LIMITS = { items: 50, textChars: 500, threads: 50 } as const;

const clip = (text: string) => (text.length > MCP_LIMITS.textChars ? `${text.slice(0, MCP_LIMITS.textChars)}… (${text.length} characters)` : text);

const IdempotencyKey = Id.optional().describe(
  "any unique string for this change; sending the same key again (a retry) changes nothing twice",
);
const ThreadId = Id.describe("the thread's id (from list_threads)");
const ItemId = Id.describe("the queue item's id (from show_queue)");

/**
 * The procedures the tools call, in the SDK client's shape: the SDK's client itself
 * (`turnqueue mcp`, over the network) or the server's own procedures (`/mcp`).
 */
export type QueueClient = Pick<TurnqueueClient, "thread" | "queue">;

/**
 * Turnqueue's queue as MCP tools, so an agent can read and arrange the queue of user turns
 * it is working through. Every tool is one call of a procedure: the token behind the client
 * decides the workspace and the role, exactly as for any other client. `describe` turns
 * what the client throws into the line the agent reads (never a token).
 */
export function createQueueMcpServer(client: QueueClient, version: string, describe: (error: unknown) => string): McpServer {
  const server = new McpServer({ name: "turnqueue", version });
  const answer = async (work: () => Promise<unknown>): Promise<CallToolResult> => {
    try {
      const value = await work();
      return { content: [{ type: "text", text: JSON.stringify(value) }], structuredContent: value as Record<string, unknown> };
    } catch (error) {
      return { isError: true, content: [{ type: "text", text: describe(error) }] };
    }
  };

  server.registerTool(
    "list_threads",
    { description: `Threads of this workspace (at most ${MCP_LIMITS.threads}), with queue length, session and pause state.`, inputSchema: {} },
    () =>
      answer(async () => {
        const page = await client.thread.list.query({ limit: MCP_LIMITS.threads });
        return {
          threads: page.items.map(({ threadId, title, queueLength, paused, sessionStatus }) => ({ threadId, title: clip(title), queueLength, paused, sessionStatus })),
          more: page.nextCursor !== null,
        };
      }),
  );

  server.registerTool(
    "show_queue",
    { description: `A thread's queue in the order it will be sent (at most ${MCP_LIMITS.items} items, long texts clipped), whether it is paused, and the agent session's status.`, inputSchema: { threadId: ThreadId } },
    ({ threadId }) =>
      answer(async () => {
        const snapshot = await client.thread.get.query({ threadId });
        const items = snapshot.queue.items;
        return {
          threadId,
          title: clip(snapshot.title),
          paused: snapshot.queue.paused,
          pauseReason: snapshot.queue.pauseReason,
          session: snapshot.session.status,
          items: items.slice(0, MCP_LIMITS.items).map((item) => ({
            queueItemId: item.queueItemId,
            status: item.status,
            text: clip(item.text),
            ...(item.failureReason ? { failureReason: item.failureReason } : {}),
          })),
          moreItems: Math.max(0, items.length - MCP_LIMITS.items),
        };
      }),
  );

  server.registerTool(
    "queue_status",
    { description: "What became of a message queued with add_to_queue: queued (with its place in line), sending, sent (turn and outcome), failed (reason), removed, or unknown. Ask this instead of adding it again.", inputSchema: { threadId: ThreadId, messageId: Id.describe("the idempotency key the message was added with") } },
    ({ threadId, messageId }) =>
      answer(async () => ({ messageId, ...(await client.queue.status.query({ threadId, messageId })) })),
  );

  server.registerTool(
    "add_to_queue",
    {
      description:
        "Queue a user message on a thread. delivery: queue (default, at the tail), steer (into the running turn, or as the next turn), interrupt (stop the running turn, then go first). The idempotency key is the message's id: adding it again returns the same item.",
      inputSchema: { threadId: ThreadId, text: z.string().min(1).max(MAX_TEXT_LENGTH), delivery: Delivery.optional(), idempotencyKey: IdempotencyKey },
    },
    ({ threadId, text, delivery, idempotencyKey }) =>
      answer(() => client.queue.add.mutate({ threadId, message: { messageId: idempotencyKey ?? crypto.randomUUID(), text }, delivery })),
  );

  server.registerTool(
    "edit_queue_item",
    { description: "Replace the text of a queued item (not one already being sent).", inputSchema: { threadId: ThreadId, queueItemId: ItemId, text: z.string().max(MAX_TEXT_LENGTH), idempotencyKey: IdempotencyKey } },
    ({ threadId, queueItemId, text, idempotencyKey }) => answer(() => client.queue.edit.mutate({ threadId, queueItemId, text, commandId: idempotencyKey })),
  );

  server.registerTool(
    "move_queue_item",
    {
      description: "Move a queued item after another item, or to the head of the queue when afterId is null.",
      inputSchema: { threadId: ThreadId, queueItemId: ItemId, afterId: Id.nullable().describe("the item it goes after; null for the head"), idempotencyKey: IdempotencyKey },
    },
    ({ threadId, queueItemId, afterId, idempotencyKey }) => answer(() => client.queue.move.mutate({ threadId, queueItemId, afterId, commandId: idempotencyKey })),
  );

  const itemTools = [
    ["remove_queue_item", "remove", "Remove an item from the queue."],
    ["send_now", "sendNow", "Send an item next, before the rest of the queue."],
    ["retry_queue_item", "retry", "Queue a failed item again."],
  ] as const;
  for (const [name, procedure, description] of itemTools) {
    server.registerTool(name, { description, inputSchema: { threadId: ThreadId, queueItemId: ItemId, idempotencyKey: IdempotencyKey } }, ({ threadId, queueItemId, idempotencyKey }) =>
      answer(() => client.queue[procedure].mutate({ threadId, queueItemId, commandId: idempotencyKey })),
    );
  }

  const queueTools = [
    ["pause_queue", "pause", "Hold the queue: nothing more is sent to the agent until resumed."],
    ["resume_queue", "resume", "Let the queue drain again, one turn at a time."],
  ] as const;
  for (const [name, procedure, description] of queueTools) {
    server.registerTool(name, { description, inputSchema: { threadId: ThreadId, idempotencyKey: IdempotencyKey } }, ({ threadId, idempotencyKey }) =>
      answer(() => client.queue[procedure].mutate({ threadId, commandId: idempotencyKey })),
    );
  }
  return server;
}
