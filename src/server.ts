import { existsSync } from "node:fs";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { applyWSSHandler } from "@trpc/server/adapters/ws";
import sirv from "sirv";
import { WebSocketServer } from "ws";
import { createAuth } from "./auth/tokens.js";
import { createContextFactory } from "./api/context.js";
import { SocketCalls } from "./api/socket-calls.js";
import { applyCors } from "./api/cors.js";
import { createMcpHandler, MCP_PATH } from "./api/mcp.js";
import { createRestHandler, REST_PREFIX } from "./api/rest.js";
import { appRouter } from "./api/router.js";
import { createCluster } from "./cluster/index.js";
import { COLLAB_PATH, createCollab } from "./collab/index.js";
import { createEngine } from "./engine/engine.js";
import type { Engine } from "./engine/types.js";
import { instrumentEngine } from "./observability/instrument-engine.js";
import { createLogger } from "./observability/logger.js";
import { createMetrics, type Metrics } from "./observability/metrics.js";
import type { Auth } from "./auth/tokens.js";
import type { Bus } from "./cluster/bus.js";
import type { Lease } from "./cluster/lease.js";
import type { Config } from "./config.js";
import type { Closable } from "./lifecycle.js";
import type { Database } from "./store/database.js";
import type { EventStore } from "./store/types.js";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { registerQueueGauges } from "./observability/queue-gauges.js";
import { contextOf, inSpan } from "./tracing.js";
import { startReactors } from "./reactors/index.js";
import { guardUpgradeSocket, webSocketGuard } from "./socket-errors.js";
import { TokenConnections } from "./token-connections.js";
import { packageVersion } from "./version.js";
import { named, withoutPassword } from "./config.js";
import { lockDataDir } from "./startup/data-dir-lock.js";
import { StartupError } from "./exit-codes.js";
import { openDatabaseWaiting } from "./startup/open-database.js";

/** Everything a plug-in (api, collab, reactors) may use; wired once in server.ts. */
export interface Services {
  config: Config;
  logger: Logger;
  db: Database;
  store: EventStore;
  engine: Engine;
  bus: Bus;
  lease: Lease;
  auth: Auth;
  metrics: Registry;
  /** Long-lived connections per token, one budget across the doors that hold them. */
  connections: TokenConnections;
  /** The only clock the service reads; tests may replace it (and must say so). */
  now: () => Date;
}

export interface Turnqueue {
  /** Where the server listens, with the real port when config.port was 0. */
  url: string;
  services: Services;
  /** Graceful shutdown: see `close` below for the order and why. */
  close(): Promise<void>;
}

/** A plug-in that owns WebSocket upgrades under a path prefix (collab at `/yjs/`). */
interface UpgradeRoute {
  prefix: string;
  door: string;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** How long shutdown waits for in-flight HTTP requests before cutting connections. */
const DRAIN_GRACE_MS = 10_000;
/** /readyz answers "not ready" rather than hang when the database does not answer. */
const READY_TIMEOUT_MS = 2_000;

const webDist = fileURLToPath(new URL("../client/web/dist", import.meta.url));

/**
 * Opens the store, wires every part to it and serves all doors on one HTTP port:
 * /trpc (HTTP + WebSocket), /yjs/<threadId>, /healthz, /readyz, /metrics and the web page.
 */
export async function startTurnqueue(config: Config, options: { now?: () => Date } = {}): Promise<Turnqueue> {
  const logger = createLogger(config.logLevel);
  const metrics = createMetrics();
  // Everything started so far, stopped in reverse order: a failed start undoes itself too.
  const started: { name: string; part: Closable }[] = [];
  const stopAll = async () => {
    for (const { name, part } of started.reverse()) {
      await part.close().catch((err: unknown) => logger.error({ err, part: name }, "failed to close cleanly"));
    }
    started.length = 0;
  };
  const keep = <T extends Closable>(name: string, part: T): T => {
    started.push({ name, part });
    return part;
  };

  try {
    // Before the database: a second server on the same PGlite files must not even open them.
    if (!config.databaseUrl) keep("data directory lock", await lockDataDir(config.dataDir));
    const db = keep("database", await openDatabaseWaiting(config, logger));
    // The database owns the event store (closed with it): one store, tuned to its driver.
    const store = db.store;
    const { bus, lease } = await createCluster(config, db, { logger }).catch((error: unknown) => {
      throw config.redisUrl && /Redis/.test((error as Error).message)
        ? new StartupError("redisUnreachable", `${withoutPassword((error as Error).message)}: start it, or fix ${named("redisUrl")}`, { cause: error })
        : error;
    });
    keep("bus", bus);
    keep("lease", lease);
    registerQueueGauges(metrics.registry, db.sql);
    const now = options.now ?? (() => new Date());
    const engine = keep("engine", finishingInFlight(instrumentEngine(createEngine({ store, bus, now, policy: config.drainPolicy, logger }), metrics, logger)));
    const services: Services = {
      config,
      logger,
      db,
      store,
      engine,
      bus,
      lease,
      auth: createAuth(config.secret),
      metrics: metrics.registry,
      connections: new TokenConnections(config.limits.maxConnectionsPerToken),
      now,
    };

    // ── Plug-ins ──────────────────────────────────────────────────────────────────────
    // Each starts here with the services and is stopped, in reverse order, after the HTTP
    // server has stopped and before the engine and the database close. Start one with
    // `keep("<name>", await startX(services))`; one that serves WebSockets also adds an
    // entry to `upgrades` (the path prefix it owns and its handleUpgrade).
    const upgrades: UpgradeRoute[] = [];
    keep("reactors", await startReactors(services));
    const collab = keep("collab", createCollab(services));
    upgrades.push({ prefix: COLLAB_PATH, door: "yjs", handleUpgrade: collab.handleUpgrade });
    // ─────────────────────────────────────────────────────────────────────────────────

    const server = keep("http", await serve(services, metrics, upgrades));
    logger.info({ url: server.url, database: db.kind, redis: Boolean(config.redisUrl) }, "turnqueue is serving");
    const close = async () => {
      logger.info("turnqueue is stopping");
      await stopAll();
      logger.info("turnqueue stopped");
    };
    return { url: server.url, services, close };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/**
 * Waits for commands already inside the engine before closing it, so shutdown never cuts
 * a transaction in half (the store's transaction is atomic; this keeps it from failing).
 */
function finishingInFlight(engine: Engine): Engine {
  const inFlight = new Set<Promise<unknown>>();
  return {
    ...engine,
    execute(threadId, command, options) {
      const running = engine.execute(threadId, command, options);
      const forget = (): void => void inFlight.delete(settled);
      const settled: Promise<void> = running.then(forget, forget);
      inFlight.add(settled);
      return running;
    },
    async close() {
      await Promise.all(inFlight);
      await engine.close();
    },
  };
}

type Door = "trpc" | "rest" | "mcp" | "healthz" | "readyz" | "metrics" | "local-token" | "static";

const doorOf = (pathname: string): Door => {
  if (pathname === "/trpc" || pathname.startsWith("/trpc/")) return "trpc";
  if (pathname.startsWith(`${REST_PREFIX}/`)) return "rest";
  if (pathname === MCP_PATH) return "mcp";
  switch (pathname) {
    case "/healthz":
      return "healthz";
    case "/readyz":
      return "readyz";
    case "/metrics":
      return "metrics";
    case "/local-token":
      return "local-token";
    default:
      return "static";
  }
};

/** Who /local-token signs in: the user `turnqueue serve` prints a token for. */
export const LOCAL_USER = { sub: "local", workspaceId: "local", role: "user" } as const;
const isLoopback = (host: string) => /^(127\.\d+\.\d+\.\d+|localhost|\[?::1\]?)$/.test(host);

const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

const sendJson = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
};

/** tRPC's own answer to an oversized body (same shape and code), then the connection closes. */
function payloadTooLarge(res: ServerResponse, max: number): void {
  res.setHeader("connection", "close");
  sendJson(res, 413, {
    error: {
      message: `the request body is larger than ${max} bytes`,
      code: -32013,
      data: { code: "PAYLOAD_TOO_LARGE", httpStatus: 413 },
    },
  });
}

async function serve(services: Services, metrics: Metrics, upgrades: UpgradeRoute[]): Promise<{ url: string } & Closable> {
  const { config, logger } = services;
  const socketCalls = new SocketCalls();
  const contexts = createContextFactory(services, services.connections, socketCalls);
  // A refused call (no token, a token we did not sign, the wrong role) is logged and counted:
  // a misconfigured agent shows up here. Never the token itself.
  const onErrorAt = (door: "trpc" | "rest" | "mcp"): typeof contexts.onError => (opts) => {
    contexts.onError(opts);
    if (opts.error.code !== "UNAUTHORIZED" && opts.error.code !== "FORBIDDEN") return;
    metrics.refusals.inc({ door, reason: opts.error.code });
    logger.info({ door, path: opts.path, reason: opts.error.code }, "call refused");
  };
  const onError = onErrorAt("trpc");
  const { limits } = config;
  const trpcHttp = createHTTPHandler({
    router: appRouter,
    basePath: "/trpc/",
    createContext: contexts.http,
    onError,
    // Counted while the body streams in: an oversized body is refused at the limit, not read whole.
    maxBodySize: limits.maxBodyBytes,
    maxBatchSize: limits.maxBatchSize,
    // The rest of a refused body is not worth reading: the connection closes after the answer.
    responseMeta: ({ errors }) => (errors.some((e) => e.code === "PAYLOAD_TOO_LARGE") ? { headers: { connection: "close" } } : {}),
  });
  const rest = createRestHandler({ createContext: contexts.http, onError: onErrorAt("rest"), maxBodyBytes: limits.maxBodyBytes });
  const mcp = createMcpHandler({ createContext: contexts.http, onError: onErrorAt("mcp"), maxBodyBytes: limits.maxBodyBytes, version: packageVersion() });
  // A message over the limit closes the socket (1009) before it is buffered whole.
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxBodyBytes });
  const trpcWs = applyWSSHandler({
    wss,
    router: appRouter,
    createContext: contexts.ws,
    onError,
    maxBatchSize: limits.maxBatchSize,
    keepAlive: { enabled: true, pingMs: 30_000, pongWaitMs: 5_000 },
  });
  const guardTrpcSocket = webSocketGuard(logger, "trpc");
  const routes: UpgradeRoute[] = [
    {
      prefix: "/trpc",
      door: "trpc",
      handleUpgrade: (req, socket, head) =>
        wss.handleUpgrade(req, socket, head, (ws) => {
          guardTrpcSocket(ws);
          wss.emit("connection", ws, req);
        }),
    },
    ...upgrades,
  ];
  const web = existsSync(webDist) ? sirv(webDist, { single: true, etag: true }) : null;

  let draining = false;
  let inFlight = 0;
  let idle: (() => void) | null = null;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const { pathname } = new URL(req.url ?? "/", "http://localhost");
    const door = doorOf(pathname);
    // Tells keep-alive clients to reconnect elsewhere while this instance stops.
    if (draining) res.setHeader("connection", "close");
    res.once("finish", () => metrics.httpRequests.inc({ door, status: res.statusCode }));
    if ((door === "trpc" || door === "rest" || door === "mcp") && applyCors(req, res, config.corsOrigins)) return;
    switch (door) {
      case "trpc":
        // A body announced over the limit is refused before a byte of it is read.
        if (Number(req.headers["content-length"] ?? 0) > limits.maxBodyBytes) return payloadTooLarge(res, limits.maxBodyBytes);
        // A caller's `traceparent` (an agent reporting a dispatched turn) continues its trace.
        return inSpan(`trpc ${pathname.slice("/trpc/".length)}`, {}, () => {
          const answered = new Promise<void>((resolve) => res.once("close", resolve));
          return Promise.all([trpcHttp(req, res), answered]).then(() => {});
        }, contextOf(header(req.headers.traceparent)));
      case "rest":
        return rest(req, res);
      case "mcp":
        return mcp(req, res);
      case "healthz":
        return sendJson(res, 200, { status: "ok" });
      case "readyz":
        try {
          await withTimeout(services.store.ping(), READY_TIMEOUT_MS, "the database did not answer");
          return sendJson(res, draining ? 503 : 200, { status: draining ? "stopping" : "ready" });
        } catch (error) {
          return sendJson(res, 503, { status: "unavailable", error: (error as Error).message });
        }
      case "metrics":
        return void res
          .writeHead(200, { "content-type": services.metrics.contentType })
          .end(await services.metrics.metrics());
      case "local-token":
        // The embedded default on loopback is one person's server: the board opens signed in
        // as its local user. The Host check keeps DNS-rebinding pages from reading the token.
        if (config.databaseUrl || !isLoopback(config.host) || !isLoopback((req.headers.host ?? "").replace(/:\d+$/, ""))) {
          return sendJson(res, 404, { error: "not found" });
        }
        return sendJson(res, 200, { token: await services.auth.issue(LOCAL_USER, { expiresIn: "30d" }) });
      case "static":
        if (web) return web(req, res, () => sendJson(res, 404, { error: "not found" }));
        return sendJson(res, 404, { error: "the web page is not built: run `npm run build:web`" });
    }
  };

  // Requests being answered, so that shutdown can end the event streams among them.
  const answering = new Set<ServerResponse>();
  const server = http.createServer((req, res) => {
    // A client that goes away mid-request is that request's end, never the server's.
    req.on("error", () => res.destroy());
    res.on("error", () => req.destroy());
    inFlight++;
    answering.add(res);
    res.once("close", () => {
      answering.delete(res);
      if (--inFlight === 0) idle?.();
    });
    handle(req, res).catch((err: unknown) => {
      logger.error({ err, url: req.url }, "request failed");
      if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
      else res.destroy();
    });
  });

  // Listeners shared by all sockets (per door for WebSockets): a closure per connection is
  // memory each open one holds, and one made in the handlers below would also hold the
  // request's URL, token included.
  const connectionClosed = () => metrics.httpConnections.dec();
  const webSocketClosed = new Map(routes.map((r) => [r.door, () => metrics.websockets.dec({ door: r.door })]));
  server.on("connection", (socket) => {
    metrics.httpConnections.inc();
    socket.on("close", connectionClosed);
  });

  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    guardUpgradeSocket(socket);
    const { pathname } = new URL(req.url ?? "/", "http://localhost");
    const route = routes.find((r) => pathname === r.prefix || pathname.startsWith(r.prefix.endsWith("/") ? r.prefix : `${r.prefix}/`));
    if (!route || draining) {
      const reason = draining ? "stopping" : "not_found";
      metrics.refusals.inc({ door: route?.door ?? "none", reason });
      logger.info({ door: route?.door ?? "none", path: pathname, reason }, "connection refused");
      socket.end(`HTTP/1.1 ${draining ? "503 Service Unavailable" : "404 Not Found"}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    metrics.connections.inc({ door: route.door });
    metrics.websockets.inc({ door: route.door });
    // The collab door logs its own, once it knows the thread and who is asking.
    if (route.door === "trpc") logger.info({ door: route.door, remote: req.socket.remoteAddress }, "connection opened");
    socket.on("close", webSocketClosed.get(route.door)!);
    route.handleUpgrade(req, socket, head);
  });

  const url = await listen(server, config);

  return {
    url,
    /**
     * Stop accepting, let requests and socket calls in flight finish (an answered command is
     * committed; new socket calls are refused, SERVICE_UNAVAILABLE), then tell tRPC WebSocket
     * clients to reconnect and close their sockets. Plug-ins close their own WebSockets when
     * they are stopped next.
     */
    async close() {
      draining = true;
      const socketsAnswered = socketCalls.stop();
      // Not awaited: the listening socket's close also waits for upgraded sockets, which
      // their plug-ins close after this.
      server.close();
      server.closeIdleConnections();
      // An event stream never finishes by itself: its client reconnects (to another
      // instance) and resumes from its last event id, as after a WebSocket's close.
      for (const res of answering) if (String(res.getHeader("content-type") ?? "").startsWith("text/event-stream")) res.destroy();
      if (inFlight > 0) {
        await Promise.race([new Promise<void>((resolve) => (idle = resolve)), sleep(DRAIN_GRACE_MS)]);
      }
      server.closeAllConnections();
      trpcWs.broadcastReconnectNotification();
      await Promise.race([socketsAnswered, sleep(DRAIN_GRACE_MS)]);
      for (const ws of wss.clients) ws.close(1001, "server shutting down");
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

function listen(server: http.Server, config: Config): Promise<string> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const why = error.code === "EADDRINUSE" ? "is already in use" : error.code === "EACCES" ? "may not be bound by this user" : null;
      reject(
        why
          ? new StartupError("portUnavailable", `${config.host}:${config.port} ${why}: choose another with ${named("port")} (0 picks a free one)`, { cause: error })
          : error.code === "EADDRNOTAVAIL" || error.code === "ENOTFOUND"
            ? new StartupError("badSetting", `${named("host")}: ${config.host} is not an address of this machine (${error.code})`, { cause: error })
            : error,
      );
    };
    server.once("error", onError);
    server.listen(config.port, config.host, () => {
      server.off("error", onError);
      const { address, port } = server.address() as AddressInfo;
      // A wildcard address is not somewhere a browser can go; loopback is.
      const host = address === "0.0.0.0" ? "127.0.0.1" : address === "::" ? "[::1]" : address.includes(":") ? `[${address}]` : address;
      resolve(`http://${host}:${port}`);
    });
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

