import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { TRPCError } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import { z } from "zod";
import { Attachments, Author, Delivery, Id, Text, TurnOptions } from "../domain/index.js";
import { publicErrorData, toTRPCError } from "./errors.js";
import { readJson } from "./json-body.js";
import { appRouter } from "./router.js";
import type { Context, ProcedureMeta } from "./trpc.js";

/** Where the REST door lives; every route below is under it. */
export const REST_PREFIX = "/api/v1";

type Method = "GET" | "POST" | "PATCH" | "DELETE";

interface Route {
  method: Method;
  /** OpenAPI-style path under REST_PREFIX, with `{param}` segments. */
  path: string;
  /** The tRPC procedure it calls: same input validation, same errors. */
  procedure: string;
  /** The procedure's input as JSON Schema (what the body or the query string carries). */
  input: JsonSchema;
  /** A body that is not the procedure's own input (minus path parameters), and how it maps. */
  body?: { schema: z.ZodType; toInput(body: never): Record<string, unknown> };
}

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  [key: string]: unknown;
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
  delivery: Delivery.optional(),
  authorName: Author.shape.name,
  commandId: Id.optional(),
});

/**
 * The procedures that are plain verbs on a resource. Every other user-side procedure is an
 * action on its resource: `POST` for a mutation, `GET` for a query, at `<resource>/<name>`.
 */
const VERBS: Record<string, { method: Method; suffix?: string; body?: Route["body"] }> = {
  "thread.list": { method: "GET" },
  "thread.create": { method: "POST" },
  "thread.get": { method: "GET" },
  "thread.delete": { method: "DELETE" },
  "queue.add": {
    method: "POST",
    suffix: "/queue",
    body: {
      schema: AddBody,
      toInput: ({ text, messageId, attachments, ...rest }: z.infer<typeof AddBody>) => ({
        ...rest,
        message: { messageId: messageId ?? randomUUID(), text, ...(attachments ? { attachments } : {}) },
      }),
    },
  },
  "queue.edit": { method: "PATCH" },
  "queue.remove": { method: "DELETE" },
};

/** What a route does, for readers of the OpenAPI document (a new procedure is listed without one). */
const SUMMARIES: Record<string, string> = {
  "thread.list": "the workspace's threads, newest first (query: limit, cursor)",
  "thread.create": "create a thread",
  "thread.get": "a thread with its queue and agent session",
  "thread.rename": "give a thread another title",
  "thread.history": "the thread's sent messages, newest first, with their turns' outcomes (query: limit, cursor)",
  "queue.add": "queue a message (messageId is generated when absent)",
  "queue.edit": "replace an item's text",
  "queue.move": "move an item after another (afterId), or to the head (afterId: null)",
  "queue.sendNow": "send an item next (its delivery becomes steer)",
  "queue.setDelivery": "how a waiting item goes: queue, steer (into the running turn) or interrupt (stop the turn, then go first)",
  "queue.setMode": "auto (turn after turn) or step (hold after each turn until resumed)",
  "queue.status": "what became of a message (query: messageId): queued, sending, sent, failed, removed or unknown",
  "queue.pause": "hold the queue",
  "queue.resume": "let the queue drain again",
};

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

interface ProcedureDef {
  _def: { type: "query" | "mutation" | "subscription"; meta?: ProcedureMeta; inputs: z.ZodType[] };
}

/**
 * One route per user-side query and mutation of the router, derived from its name and its
 * input: the thread and the item a procedure requires are path segments
 * (`/threads/{threadId}/queue/{queueItemId}`), the rest is the body or the query string.
 * Subscriptions stream at `/trpc/<procedure>` (server-sent events), not here.
 */
function deriveRoutes(): Route[] {
  // tRPC keeps a flat map of its procedures by dotted path beside the nested record.
  const procedures = appRouter._def.procedures as unknown as Record<string, ProcedureDef>;
  return Object.entries(procedures)
    .filter(([, p]) => p._def.meta?.side === "user" && p._def.type !== "subscription")
    .map(([procedure, p]) => {
      const schema = p._def.inputs[0];
      const input = (schema ? z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) : { type: "object" }) as JsonSchema;
      const required = new Set(input.required ?? []);
      const resource = `/threads${required.has("threadId") ? "/{threadId}" : ""}${required.has("queueItemId") ? "/queue/{queueItemId}" : ""}`;
      const verb = VERBS[procedure];
      const name = procedure.split(".")[1];
      const method = verb?.method ?? (p._def.type === "query" ? "GET" : "POST");
      return { method, path: verb ? `${resource}${verb.suffix ?? ""}` : `${resource}/${kebab(name)}`, procedure, input, body: verb?.body };
    });
}

const ROUTES = deriveRoutes();

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

/** The JSON types a property of an input schema allows. */
const typesOf = (schema: JsonSchema | undefined): string[] =>
  !schema ? [] : [...[schema.type ?? []].flat(), ...(schema.anyOf ?? []).flatMap(typesOf)];

/** A query string as the procedure's input: a number or a boolean where its schema says so, else text. */
function queryInput(url: URL, input: JsonSchema): Record<string, unknown> {
  return Object.fromEntries(
    [...url.searchParams].map(([key, text]) => {
      const types = typesOf(input.properties?.[key]);
      if (types.includes("string")) return [key, text];
      if ((types.includes("integer") || types.includes("number")) && /^-?\d+(\.\d+)?$/.test(text)) return [key, Number(text)];
      if (types.includes("boolean") && (text === "true" || text === "false")) return [key, text === "true"];
      return [key, text];
    }),
  );
}

const send = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));

/** An error as plain JSON: the code, the message, the stable `reason` and the invalid fields (`issues`). */
function sendError(res: ServerResponse, error: TRPCError) {
  const { code, message, reason, zodError } = publicErrorData(error);
  send(res, getHTTPStatusCodeFromError(error), { error: { code, message, reason, issues: zodError } });
}

export interface RestOptions {
  createContext: (opts: { req: IncomingMessage }) => Promise<Context>;
  /** Every failed call: the same logging and refusal metrics as the tRPC door's. */
  onError: (opts: { error: TRPCError; path?: string }) => void;
  /** The same --max-body-bytes limit as the tRPC door's. */
  maxBodyBytes: number;
}

/**
 * The REST door: plain JSON routes onto the same tRPC procedures (called in-process with the
 * request's context), so validation, authorization and errors are the procedures' own.
 */
export function createRestHandler({ createContext, onError, maxBodyBytes }: RestOptions) {
  const document = openApiDocument();
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === `${REST_PREFIX}/openapi.json` && req.method === "GET") return void send(res, 200, document);
    let found: ReturnType<typeof match>;
    try {
      found = match(req.method ?? "GET", url.pathname);
    } catch {
      return void send(res, 400, { error: { code: "BAD_REQUEST", message: "the path is not valid percent-encoding", reason: null, issues: null } });
    }
    if (found === null) return void send(res, 404, { error: { code: "NOT_FOUND", message: `no route ${url.pathname}`, reason: null, issues: null } });
    if (found === "method") return void send(res, 405, { error: { code: "METHOD_NOT_SUPPORTED", message: `${req.method} is not allowed here`, reason: null, issues: null } });
    const { route, params } = found;
    let called = false;
    try {
      let input: Record<string, unknown>;
      if (route.method === "GET") input = queryInput(url, route.input);
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
      const caller = appRouter.createCaller(await createContext({ req }), { onError }) as unknown as Caller;
      called = true;
      send(res, 200, await caller[group][name](input));
    } catch (error) {
      const trpcError = toTRPCError(error) ?? new TRPCError({ code: "INTERNAL_SERVER_ERROR", cause: error });
      // The caller has reported its own failures; these failed before it (body, context).
      if (!called) onError({ error: trpcError, path: route.procedure });
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
          reason: { type: ["string", "null"], description: "stable reason code of a refusal, e.g. QUEUE_FULL" },
          issues: { type: ["object", "null"], description: "invalid fields: { formErrors, fieldErrors }" },
        },
      },
    },
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) {
    const params = paramsOf(route.path);
    const json = route.body ? (z.toJSONSchema(route.body.schema, { io: "input" }) as JsonSchema) : route.input;
    const { $schema: _schema, ...bodySchema } = structuredClone(json);
    if (bodySchema.properties) {
      for (const p of params) delete bodySchema.properties[p];
      bodySchema.required = bodySchema.required?.filter((r) => !params.includes(r));
    }
    const operation: Record<string, unknown> = {
      operationId: route.procedure.replace(".", "_"),
      summary: `${route.procedure}${SUMMARIES[route.procedure] ? `: ${SUMMARIES[route.procedure]}` : ""}`,
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
