import type { IncomingMessage, ServerResponse } from "node:http";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { TRPCError } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import { failureLine } from "../mcp/failure-line.js";
import { createQueueMcpServer, type QueueClient } from "../mcp/queue-tools.js";
import { publicErrorData, toTRPCError } from "./errors.js";
import { readJson } from "./json-body.js";
import { appRouter } from "./router.js";
import type { Context } from "./trpc.js";

/** Where the MCP door lives (streamable HTTP). */
export const MCP_PATH = "/mcp";

export interface McpOptions {
  createContext: (opts: { req: IncomingMessage }) => Promise<Context>;
  /** Every failed call: the same logging and refusal metrics as the other doors'. */
  onError: (opts: { error: TRPCError; path?: string }) => void;
  maxBodyBytes: number;
  version: string;
}

type Caller = Record<string, Record<string, (input: unknown) => Promise<unknown>>>;

/**
 * The server's own procedures in the SDK client's shape (`thread.get.query(input)`), so the
 * tools are the very ones `turnqueue mcp` serves, called in-process with the request's context.
 */
const viaCaller = (caller: Caller): QueueClient =>
  new Proxy({} as QueueClient, {
    get: (_, group: string) =>
      new Proxy({}, {
        get: (__, name: string) => {
          const call = (input: unknown) => caller[group][name](input);
          return { query: call, mutate: call };
        },
      }),
  });

const describe = (error: unknown): string => {
  const failure = toTRPCError(error) ?? new TRPCError({ code: "INTERNAL_SERVER_ERROR", cause: error });
  return failureLine(publicErrorData(failure));
};

/** A JSON-RPC error answered before any MCP message is read (the transport answers the rest). */
function refuse(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

/**
 * `/mcp`: the queue tools over MCP's streamable HTTP transport, for agents that reach
 * Turnqueue over the network rather than start `turnqueue mcp`. Stateless: every POST carries
 * its bearer token and is served by a fresh server bound to that token's caller, so the
 * token's workspace, role and expiry hold per request, and no session outlives it. There is
 * no server-to-client stream (GET is 405, as the transport allows).
 */
export function createMcpHandler({ createContext, onError, maxBodyBytes, version }: McpOptions) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== "POST") return refuse(res, 405, "this server takes POST only (stateless: no session, no stream to resume)", { allow: "POST" });
    const ctx = await createContext({ req });
    if (!ctx.principal) {
      onError({ error: new TRPCError({ code: "UNAUTHORIZED" }), path: MCP_PATH });
      return refuse(res, 401, "a valid token is required: Authorization: Bearer <turnqueue token>", { "www-authenticate": 'Bearer realm="turnqueue"' });
    }
    let body: unknown;
    try {
      body = await readJson(req, maxBodyBytes);
    } catch (error) {
      const failure = toTRPCError(error)!;
      return refuse(res, getHTTPStatusCodeFromError(failure), failure.message);
    }
    const caller = appRouter.createCaller(ctx, { onError }) as unknown as Caller;
    const server = createQueueMcpServer(viaCaller(caller), version, describe);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.once("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  };
}
