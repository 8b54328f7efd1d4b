import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { TRPCError } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import { z, ZodError } from "zod";
import { Attachments, Id, Text, TurnOptions } from "../domain/index.js";
import type { Logger } from "pino";
import { reasonOf, toTRPCError } from "./errors.js";
import { appRouter } from "./router.js";
import type { Context } from "./trpc.js";

/** Where the REST door lives; every route below is under it. */
export const REST_PREFIX = "/api/v1";

type Method = "GET" | "POST" | "PATCH" | "DELETE";

interface Route {
  method: Method;
  /** OpenAPI-style path under REST_PREFIX, with `{param}` segments. */
  path: string;
  /** The tRPC procedure it calls: same input validation, same errors. */
  procedure: string;
  summary: string;
  /** A body that is not the procedure's own input (minus path parameters), and how it maps. */
  body?: { schema: z.ZodType; toInput(body: never): Record<string, unknown> };
}

/**
 * `queue.add` over REST: the message's fields at the top, and a `messageId` chosen here when
 * the client gives none (the id then names this one request: a retry must send the id back).
 */
const AddBody = z.strictObject({
  text: Text,
  messageId: Id.optional(),
  attachments: Attachments.optional(),
  options: TurnOptions.optional(),
  sendNow: z.boolean().optional(),
  commandId: Id.optional(),
});

const ROUTES: Route[] = [
  { method: "GET", path: "/threads", procedure: "thread.list", summary: "List the workspace's threads (query: limit, cursor)" },
  { method: "POST", path: "/threads", procedure: "thread.create", summary: "Create a thread" },
  { method: "GET", path: "/threads/{threadId}", procedure: "thread.get", summary: "A thread with its queue and agent session" },
  { method: "POST", path: "/threads/{threadId}/archive", procedure: "thread.archive", summary: "Archive a thread" },
  { method: "DELETE", path: "/threads/{threadId}", procedure: "thread.delete", summary: "Delete a thread" },
  {
    method: "POST",
    path: "/threads/{threadId}/queue",
    procedure: "queue.add",
    summary: "Queue a message (messageId is generated when absent)",
    body: {
      schema: AddBody,
      toInput: ({ text, messageId, attachments, ...rest }: z.infer<typeof AddBody>) => ({
        ...rest,
        message: { messageId: messageId ?? randomUUID(), text, ...(attachments ? { attachments } : {}) },
      }),
    },
  },
  { method: "PATCH", path: "/threads/{threadId}/queue/{queueItemId}", procedure: "queue.edit", summary: "Replace an item's text" },
  { method: "POST", path: "/threads/{threadId}/queue/{queueItemId}/move", procedure: "queue.move", summary: "Move an item after another (afterId), or to the head (afterId: null)" },
  { method: "DELETE", path: "/threads/{threadId}/queue/{queueItemId}", procedure: "queue.remove", summary: "Remove an item" },
  { method: "POST", path: "/threads/{threadId}/queue/{queueItemId}/retry", procedure: "queue.retry", summary: "Queue a failed item again" },
  { method: "POST", path: "/threads/{threadId}/queue/{queueItemId}/send-now", procedure: "queue.sendNow", summary: "Send an item next" },
  { method: "POST", path: "/threads/{threadId}/pause", procedure: "queue.pause", summary: "Hold the queue" },
  { method: "POST", path: "/threads/{threadId}/resume", procedure: "queue.resume", summary: "Let the queue drain again" },
];

const paramsOf = (path: string) => [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);

/** The route a request names, with its path parameters. */
function match(method: string, pathname: string): { route: Route; params: Record<string, string> } | "method" | null {
  const segments = pathname.slice(REST_PREFIX.length).split("/");
  let wrongMethod = false;
  for (const route of ROUTES) {
    const pattern = route.path.split("/");
    if (pattern.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const fits = pattern.every((part, i) => {
      const name = /^\{(\w+)\}$/.exec(part)?.[1];
      if (!name) return part === segments[i];
      if (!segments[i]) return false;
      params[name] = decodeURIComponent(segments[i]);
      return true;
    });
    if (!fits) continue;
    if (route.method === method) return { route, params };
    wrongMethod = true;
  }
  return wrongMethod ? "method" : null;
}

type Caller = Record<string, Record<string, (input: unknown) => Promise<unknown>>>;

async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new TRPCError({ code: "PAYLOAD_TOO_LARGE", message: `the body is over ${maxBytes} bytes` });
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8").trim();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new TRPCError({ code: "PARSE_ERROR", message: "the body is not JSON" });
  }
}

/** A query string as an input object: numbers where the text is a number. */
const queryInput = (url: URL) =>
  Object.fromEntries([...url.searchParams].map(([k, v]) => [k, /^\d+$/.test(v) && k !== "cursor" ? Number(v) : v]));

const send = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));

/** The tRPC error shape, as plain JSON: `code`, `message`, the stable `reason`, field `issues`. */
function sendError(res: ServerResponse, error: TRPCError) {
  const issues = error.code === "BAD_REQUEST" && error.cause instanceof ZodError ? z.flattenError(error.cause) : null;
  const message = error.code === "INTERNAL_SERVER_ERROR" ? "internal error" : error.message;
  send(res, getHTTPStatusCodeFromError(error), { error: { code: error.code, message, reason: reasonOf(error), issues } });
}

/**
 * The REST door: plain JSON routes onto the same tRPC procedures (called in-process with the
 * request's context), so validation, authorization and errors are the procedures' own.
 */
/** `maxBodyBytes`: the same --max-body-bytes limit as the tRPC door's. */
export function createRestHandler(createContext: (opts: { req: IncomingMessage }) => Promise<Context>, logger: Logger, maxBodyBytes: number) {
  const document = openApiDocument();
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === `${REST_PREFIX}/openapi.json` && req.method === "GET") return void send(res, 200, document);
    const found = match(req.method ?? "GET", url.pathname);
    if (found === null) return void send(res, 404, { error: { code: "NOT_FOUND", message: `no route ${url.pathname}`, reason: null, issues: null } });
    if (found === "method") return void send(res, 405, { error: { code: "METHOD_NOT_SUPPORTED", message: `${req.method} is not allowed here`, reason: null, issues: null } });
    const { route, params } = found;
    try {
      let input: Record<string, unknown>;
      if (route.method === "GET") input = queryInput(url);
      else {
        const body = await readJson(req, maxBodyBytes);
        if (typeof body !== "object" || body === null || Array.isArray(body)) throw new TRPCError({ code: "BAD_REQUEST", message: "the body must be a JSON object" });
        if (route.body) {
          const parsed = route.body.schema.safeParse(body);
          if (!parsed.success) throw new TRPCError({ code: "BAD_REQUEST", message: "invalid body", cause: parsed.error });
          input = route.body.toInput(parsed.data as never);
        } else input = body as Record<string, unknown>;
      }
      // Path parameters win: a body cannot redirect a call to another thread or item.
      Object.assign(input, params);
      const [group, name] = route.procedure.split(".");
      const caller = appRouter.createCaller(await createContext({ req })) as unknown as Caller;
      const result = await caller[group][name](input);
      send(res, 200, result);
    } catch (error) {
      const trpcError = toTRPCError(error) ?? new TRPCError({ code: "INTERNAL_SERVER_ERROR", cause: error });
      if (trpcError.code === "INTERNAL_SERVER_ERROR") logger.error({ err: trpcError.cause ?? trpcError, route: route.procedure }, "REST call failed");
      sendError(res, trpcError);
    }
  };
}

/** OpenAPI 3.1, derived from the routes and the procedures' own input schemas. */
export function openApiDocument() {
  const ErrorBody = {
    type: "object",
    required: ["error"],
    properties: {
      error: {
        type: "object",
        required: ["code", "message", "reason", "issues"],
        properties: {
          code: { type: "string", description: "tRPC error code (BAD_REQUEST, UNAUTHORIZED, NOT_FOUND, CONFLICT, …)" },
          message: { type: "string" },
          reason: { type: ["string", "null"], description: "stable reason code of a refusal, e.g. SESSION_NOT_READY" },
          issues: { type: ["object", "null"], description: "invalid fields: { formErrors, fieldErrors }" },
        },
      },
    },
  };
  const paths: Record<string, Record<string, unknown>> = {};
  // tRPC keeps a flat map of its procedures by dotted path beside the nested record.
  const procedures = appRouter._def.procedures as unknown as Record<string, { _def: { inputs: z.ZodType[] } }>;
  for (const route of ROUTES) {
    const params = paramsOf(route.path);
    const schema = route.body?.schema ?? procedures[route.procedure]._def.inputs[0];
    const json = (schema ? z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) : { type: "object" }) as {
      properties?: Record<string, unknown>;
      required?: string[];
      [key: string]: unknown;
    };
    const { $schema: _schema, ...bodySchema } = json;
    if (bodySchema.properties) {
      for (const p of params) delete bodySchema.properties[p];
      bodySchema.required = bodySchema.required?.filter((r) => !params.includes(r));
    }
    const operation: Record<string, unknown> = {
      operationId: route.procedure.replace(".", "_"),
      summary: route.summary,
      parameters: [
        ...params.map((name) => ({ name, in: "path", required: true, schema: { type: "string", minLength: 1, maxLength: 128 } })),
        ...(route.method === "GET"
          ? Object.entries(bodySchema.properties ?? {}).map(([name, s]) => ({ name, in: "query", required: bodySchema.required?.includes(name) ?? false, schema: s }))
          : []),
      ],
      responses: {
        "200": { description: "the procedure's result", content: { "application/json": { schema: { type: "object" } } } },
        default: { description: "an error, as JSON", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
      },
    };
    if (route.method !== "GET") operation.requestBody = { required: false, content: { "application/json": { schema: bodySchema } } };
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: "3.1.0",
    info: { title: "Turnqueue REST", version: "1", description: "Plain JSON routes onto Turnqueue's tRPC procedures (same validation and errors)." },
    servers: [{ url: REST_PREFIX }],
    security: [{ bearer: [] }],
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } }, schemas: { Error: ErrorBody } },
    paths,
  };
}
