import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A scripted language model on loopback: the one part of a real coding agent that cannot
 * run here. It speaks the two streaming wire formats the agents use:
 * - OpenAI Responses (`POST /v1/responses`, server-sent events): Codex, codex-acp;
 * - Anthropic Messages (`POST /v1/messages`, SSE; `HEAD /api/hello`, `count_tokens`): Claude Code.
 * Each request is answered by the script (a canned text by default) and recorded with its
 * arrival time, so tests can see what the agent sent and benches when it sent it.
 */
export type Reply =
  | { kind: "text"; text: string }
  /** A function/tool call the agent should run, then (on its next request) a text. */
  | { kind: "tool"; name: string; arguments: Record<string, unknown>; callId?: string; /** Responses API: the tool namespace (Codex groups an MCP server's tools in one). */ namespace?: string }
  /**
   * An HTTP error. `type` is the error body's type (default: the API's name for the status);
   * `body` adds fields to the error object (a usage limit's `resets_at`); `headers` are sent
   * as given (a provider's rate-limit headers).
   */
  | { kind: "error"; status: number; message: string; retryAfterSeconds?: number; type?: string; body?: Record<string, unknown>; headers?: Record<string, string> }
  /** The model unreachable: the connection is closed without an answer. */
  | { kind: "hangup" }
  /** Starts streaming, then holds the stream open until the agent hangs up (or `ms` passes). */
  | { kind: "slow"; text: string; ms?: number; until?: Promise<unknown> };

export interface ModelRequest {
  api: "responses" | "messages";
  path: string;
  body: Record<string, unknown>;
  /** performance.timeOrigin + performance.now() at arrival, in ms. */
  at: number;
  /** The last user message's text, as far as it can be found. */
  userText: string;
}

export type Script = (request: ModelRequest) => Reply;

export interface ModelServer {
  url: string;
  requests: ModelRequest[];
  /** Replace how requests are answered (the default echoes the user's last text). */
  script(script: Script): void;
  /** Resolves at the next request that `match` accepts (already recorded ones count). */
  nextRequest(match?: (r: ModelRequest) => boolean): Promise<ModelRequest>;
  close(): Promise<void>;
}

export const echoScript: Script = (r) => ({ kind: "text", text: `scripted reply to: ${r.userText}` });

export async function startModelServer(script: Script = echoScript): Promise<ModelServer> {
  let current = script;
  const requests: ModelRequest[] = [];
  const waiters: { match: (r: ModelRequest) => boolean; resolve: (r: ModelRequest) => void }[] = [];
  const open = new Set<ServerResponse>();

  const server: Server = createServer((req, res) => {
    open.add(res);
    res.on("close", () => open.delete(res));
    void handle(req, res).catch((error) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(error));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const at = performance.timeOrigin + performance.now();
    const path = (req.url ?? "/").split("?")[0]!;
    if (req.method === "HEAD" || req.method === "GET") {
      res.writeHead(path === "/api/hello" || path === "/" ? 200 : 404, { "content-type": "application/json" });
      return res.end(req.method === "GET" ? "{}" : undefined);
    }
    const body = JSON.parse((await readBody(req)) || "{}") as Record<string, unknown>;
    if (path.endsWith("/count_tokens")) return json(res, 200, { input_tokens: 10 });
    const api = path.endsWith("/responses") ? "responses" : path.endsWith("/messages") ? "messages" : null;
    if (!api) return json(res, 404, { error: { message: `no such path ${path}` } });
    const request: ModelRequest = { api, path, body, at, userText: userTextOf(api, body) };
    requests.push(request);
    for (const w of [...waiters]) {
      if (w.match(request)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(request);
      }
    }
    const reply = current(request);
    if (reply.kind === "hangup") return void req.socket.destroy();
    if (reply.kind === "error") {
      const headers: Record<string, string> = { ...(reply.retryAfterSeconds ? { "retry-after": String(reply.retryAfterSeconds) } : {}), ...reply.headers };
      return json(res, reply.status, errorBody(api, reply), headers);
    }
    if (api === "messages" && body.stream !== true) return json(res, 200, anthropicMessage(reply));
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    if (api === "responses") await streamResponses(reply, send, res);
    else await streamMessages(reply, send, res);
    res.end();
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    script(next) {
      current = next;
    },
    nextRequest(match = () => true) {
      const seen = requests.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
    async close() {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type Send = (event: string, data: unknown) => void;

/** What a slow reply streams before it stalls. */
const WORKING = ["working", " on it"];

let ids = 0;
const id = (prefix: string) => `${prefix}_${++ids}`;

async function streamResponses(reply: Exclude<Reply, { kind: "error" | "hangup" }>, send: Send, res: ServerResponse) {
  const responseId = id("resp");
  send("response.created", { type: "response.created", response: { id: responseId } });
  if (reply.kind === "slow") {
    // Some output first, in pieces as a model streams it (an ACP runtime takes a lone leading
    // text for what may be the agent's own notice): the agent sees the model working, then
    // the stream stalls.
    const itemId = id("msg");
    send("response.output_item.added", {
      type: "response.output_item.added", output_index: 0,
      item: { type: "message", role: "assistant", id: itemId, content: [] },
    });
    for (const delta of WORKING) send("response.output_text.delta", { type: "response.output_text.delta", item_id: itemId, output_index: 0, content_index: 0, delta });
    await holdOpen(res, reply.ms, reply.until);
    if (res.destroyed) return;
  }
  const item =
    reply.kind === "tool"
      ? { type: "function_call", id: id("fc"), call_id: reply.callId ?? id("call"), name: reply.name, ...(reply.namespace ? { namespace: reply.namespace } : {}), arguments: JSON.stringify(reply.arguments) }
      : { type: "message", role: "assistant", id: id("msg"), content: [{ type: "output_text", text: reply.text, annotations: [] }] };
  send("response.output_item.done", { type: "response.output_item.done", output_index: 0, item });
  send("response.completed", {
    type: "response.completed",
    response: { id: responseId, usage: { input_tokens: 10, input_tokens_details: null, output_tokens: 5, output_tokens_details: null, total_tokens: 15 } },
  });
}

async function streamMessages(reply: Exclude<Reply, { kind: "error" | "hangup" }>, send: Send, res: ServerResponse) {
  const usage = { input_tokens: 10, output_tokens: 1 };
  send("message_start", {
    type: "message_start",
    message: { id: id("msg"), type: "message", role: "assistant", model: "claude-scripted", content: [], stop_reason: null, stop_sequence: null, usage },
  });
  if (reply.kind === "slow") {
    send("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
    for (const text of WORKING) send("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } });
    await holdOpen(res, reply.ms, reply.until);
    if (res.destroyed) return;
    send("content_block_stop", { type: "content_block_stop", index: 0 });
    send("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 5 } });
    send("message_stop", { type: "message_stop" });
    return;
  }
  if (reply.kind === "tool") {
    send("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "tool_use", id: reply.callId ?? id("toolu"), name: reply.name, input: {} } });
    send("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "input_json_delta", partial_json: JSON.stringify(reply.arguments) } });
  } else {
    send("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
    send("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: reply.text } });
  }
  send("content_block_stop", { type: "content_block_stop", index: 0 });
  send("message_delta", { type: "message_delta", delta: { stop_reason: reply.kind === "tool" ? "tool_use" : "end_turn", stop_sequence: null }, usage: { output_tokens: 5 } });
  send("message_stop", { type: "message_stop" });
}

function anthropicMessage(reply: Exclude<Reply, { kind: "error" | "hangup" }>) {
  const text = reply.kind === "tool" ? "" : reply.text;
  return {
    id: id("msg"), type: "message", role: "assistant", model: "claude-scripted",
    content: [{ type: "text", text }], stop_reason: "end_turn", stop_sequence: null, usage: { input_tokens: 10, output_tokens: 5 },
  };
}

function errorBody(api: "responses" | "messages", reply: Extract<Reply, { kind: "error" }>) {
  if (api === "messages") return { type: "error", error: { type: reply.type ?? (reply.status === 429 ? "rate_limit_error" : "invalid_request_error"), message: reply.message, ...reply.body } };
  return { error: { message: reply.message, type: reply.type ?? (reply.status === 429 ? "rate_limit_exceeded" : "invalid_request_error"), code: null, ...reply.body } };
}

/** Waits until the client hangs up, `until` settles or `ms` passes (a stream an interrupt cuts short). */
function holdOpen(res: ServerResponse, ms = 600_000, until?: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    res.once("close", done);
    until?.then(done, done);
    function done() {
      clearTimeout(timer);
      resolve();
    }
  });
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** The text of the last user message in either API's request body. */
function userTextOf(api: "responses" | "messages", body: Record<string, unknown>): string {
  const list = (api === "responses" ? body.input : body.messages) as unknown[] | undefined;
  if (!Array.isArray(list)) return "";
  for (let i = list.length - 1; i >= 0; i--) {
    const m = list[i] as { role?: string; type?: string; content?: unknown };
    if (m.role !== "user") continue;
    const text = textOf(m.content);
    // Agents prepend their own context (instructions, environment) as user messages too.
    if (text && !text.startsWith("<")) return text;
  }
  return "";
}

/** A message's own text: blocks of the agent's context (`<system-reminder>…`) left out. */
function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((c: { type?: string; text?: string }) => (typeof c.text === "string" ? c.text : ""))
    .filter((text) => text && !text.trimStart().startsWith("<"))
    .join("\n")
    .trim();
}
