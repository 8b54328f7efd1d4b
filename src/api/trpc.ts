import { initTRPC, TRPCError } from "@trpc/server";
import type { Role } from "../domain/index.js";
import type { Principal } from "../auth/tokens.js";
import type { Logger } from "pino";
import type { Auth } from "../auth/tokens.js";
import type { Config } from "../config.js";
import type { Engine } from "../engine/types.js";
import type { EventStore } from "../store/types.js";
import { atExpiry, isExpired } from "../token-expiry.js";
import { tooManySubscriptions, type SocketBudget } from "./connection-limits.js";
import { publicErrorData, toTRPCError } from "./errors.js";
import { SpanStatusCode } from "@opentelemetry/api";
import { inSpan } from "../tracing.js";

/** What the procedures use, wired once by the server. */
export interface ApiServices {
  engine: Engine;
  store: EventStore;
  auth: Pick<Auth, "verify">;
  logger: Logger;
  config: Pick<Config, "sweepIntervalMs" | "limits" | "drainPolicy">;
}

export interface Context {
  services: ApiServices;
  /** Null when the request carried no token or a token we did not sign. */
  principal: Principal | null;
  /** The WebSocket the call came on, with its limits; null over HTTP. */
  socket: SocketBudget | null;
  /** Takes one of the token's connection slots (the release), or null when it has none left. */
  takeConnection(): (() => void) | null;
  /** The refusal of a connection over the token's budget. */
  tooManyConnections(): TRPCError;
}

/**
 * Which side of the protocol a procedure serves. Other doors read it from the router: the
 * REST door derives a route for every user-side query and mutation, so a new procedure
 * needs no second declaration there.
 */
export interface ProcedureMeta {
  side: "user" | "agent";
}

// Plain JSON, no transformer: docs/contract.md promises clients in any language can call us.
const t = initTRPC.context<Context>().meta<ProcedureMeta>().create({
  // Subscriptions over HTTP are server-sent event streams (httpSubscriptionLink, a browser's
  // EventSource), under the same token budget and expiry as WebSockets (`streamed` below).
  // The pings keep proxies from cutting a quiet stream; a client that hears nothing for
  // longer reconnects, resuming from its last event id.
  sse: { enabled: true, ping: { enabled: true, intervalMs: 20_000 }, client: { reconnectAfterInactivityMs: 45_000 } },
  // Stack traces are for our logs, not for clients, whatever NODE_ENV says.
  isDev: false,
  errorFormatter({ shape, error }) {
    const { message, reason, zodError } = publicErrorData(error);
    return { ...shape, message, data: { ...shape.data, zodError, reason } };
  },
});

export const router = t.router;

/**
 * Domain refusals and store outages thrown anywhere below become their contract codes. A
 * middleware sees a failed `next()` as a result, not a throw, so the mapping happens here once.
 */
const mapErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok) {
    const mapped = toTRPCError(result.error.cause);
    if (mapped) throw mapped;
  }
  return result;
});

/**
 * Which side of the protocol a procedure serves; also names the actor in the log. `readers`
 * may call the side's queries and subscriptions but none of its mutations: read or write
 * is told by the kind of procedure, so a query added later is open to them and a mutation
 * is not, without a list to keep.
 */
const side = (name: "user" | "agent", roles: readonly Role[], readers: readonly Role[] = []) =>
  t.middleware(({ ctx, type, next }) => {
    const { principal } = ctx;
    if (!principal) throw new TRPCError({ code: "UNAUTHORIZED", message: "a valid token is required" });
    // A WebSocket is closed when its token expires; this refuses what arrives in between.
    if (isExpired(principal)) throw new TRPCError({ code: "UNAUTHORIZED", message: "the token expired: reconnect with a fresh one" });
    if (ctx.socket?.refusal) throw ctx.socket.refusal;
    if (!roles.includes(principal.role) && !(type !== "mutation" && readers.includes(principal.role))) {
      throw new TRPCError({ code: "FORBIDDEN", message: `role ${principal.role} may not call this procedure` });
    }
    return next({ ctx: { principal, actor: `${name}:${principal.sub}` } });
  });

/**
 * A subscription holds what it costs from its start until it ends, however it ends (the
 * client stops it, the stream completes or fails, the connection closes): on a WebSocket, one
 * of the socket's subscription slots; over HTTP, where each stream is a connection of its
 * own, one of the token's connection slots. A WebSocket is closed when its token expires; an
 * event stream has no socket to close, so it ends there with UNAUTHORIZED.
 */
const budgeted = t.middleware(async ({ ctx, type, signal, next }) => {
  if (type !== "subscription") return next();
  const budget = ctx.socket;
  let release: () => void;
  if (budget) {
    if (budget.subscriptions >= budget.maxSubscriptions) throw tooManySubscriptions(budget.maxSubscriptions);
    budget.subscriptions++;
    let held = true;
    release = () => {
      if (held) budget.subscriptions--;
      held = false;
    };
  } else {
    const taken = ctx.takeConnection();
    if (!taken) throw ctx.tooManyConnections();
    release = taken;
  }
  signal?.addEventListener("abort", release, { once: true });
  const result = await next();
  const stream = result.ok ? result.data : null;
  if (!result.ok || !isAsyncIterable(stream)) {
    release();
    return result;
  }
  const expiresAt = budget ? null : ctx.principal?.expiresAt;
  async function* counted() {
    try {
      yield* expiresAt == null ? (stream as AsyncIterable<unknown>) : untilExpiry(stream as AsyncIterable<unknown>, expiresAt);
    } finally {
      release();
    }
  }
  return { ...result, data: counted() };
});

/** `stream`, ending with UNAUTHORIZED once `expiresAt` passes, even while it waits for an event. */
async function* untilExpiry<T>(stream: AsyncIterable<T>, expiresAt: number): AsyncGenerator<T> {
  const iterator = stream[Symbol.asyncIterator]();
  let cancel = () => {};
  const expired = new Promise<never>((_, reject) => {
    cancel = atExpiry(expiresAt, () => reject(new TRPCError({ code: "UNAUTHORIZED", message: "the token expired: reconnect with a fresh one" })));
  });
  expired.catch(() => {});
  try {
    for (;;) {
      const step = await Promise.race([iterator.next(), expired]);
      if (step.done) return;
      yield step.value;
    }
  } finally {
    cancel();
    // Not awaited: a `next()` may still be pending; the request's abort ends the stream under it.
    void iterator.return?.();
  }
}

const isAsyncIterable = (value: unknown): value is AsyncIterable<unknown> =>
  typeof value === "object" && value !== null && Symbol.asyncIterator in value;

/**
 * A query or mutation over a WebSocket is counted while it runs (a graceful stop answers it
 * before closing the socket, and refuses new ones meanwhile: SERVICE_UNAVAILABLE, call
 * again), and gets the span a call over HTTP gets from the server (`trpc <path>`,
 * src/server.ts), so its trace starts at the door whichever way it came.
 */
const atTheSocket = t.middleware(async ({ ctx, type, path, next }) => {
  if (!ctx.socket || type === "subscription") return next();
  const answered = ctx.socket.calls.enter();
  if (!answered) throw new TRPCError({ code: "SERVICE_UNAVAILABLE", message: "the server is stopping: call again" });
  try {
    return await inSpan(`trpc ${path}`, {}, async (span) => {
      const result = await next();
      if (!result.ok) span.setStatus({ code: SpanStatusCode.ERROR, message: result.error.message });
      return result;
    });
  } finally {
    // tRPC writes the answer to the socket in the microtasks after this returns: counted
    // answered only then, so a stop waiting for it closes the socket after the answer.
    setImmediate(answered);
  }
});

const base = t.procedure.use(atTheSocket).use(mapErrors);

/** The queue's owners: UIs and the CLI; a `viewer` reads what they read and changes nothing. */
export const userProcedure = base.use(side("user", ["user", "admin"], ["viewer"])).use(budgeted).meta({ side: "user" });
/** Agent runtimes reporting sessions and turns. */
export const agentProcedure = base.use(side("agent", ["agent", "admin"])).use(budgeted).meta({ side: "agent" });
