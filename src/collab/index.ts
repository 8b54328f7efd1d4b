import { randomUUID } from "node:crypto";
import { Counter, Gauge } from "prom-client";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { Id } from "../domain/index.js";
import { webSocketGuard } from "../socket-errors.js";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Auth, Principal } from "../auth/tokens.js";
import type { Bus } from "../cluster/bus.js";
import type { Lease } from "../cluster/lease.js";
import type { Config } from "../config.js";
import type { Engine } from "../engine/types.js";
import type { Database } from "../store/database.js";
import type { EventStore } from "../store/types.js";
import { closeAtExpiry } from "../token-expiry.js";
import type { TokenConnections } from "../token-connections.js";
import { createDocStore } from "../store/doc-store.js";
import { Client } from "./client.js";
import { CLOSE, MAX_MESSAGE_BYTES } from "./protocol.js";
import { DocRegistry } from "./registry.js";
import { WriteBehind } from "./write-behind.js";
import { ThreadGoneError, type ThreadDoc } from "./thread-doc.js";

export { readDoc, viewOfState, type DocView } from "./schema.js";

export const COLLAB_PATH = "/yjs/";

export interface Collab {
  /**
   * Serves an upgrade under `/yjs/<threadId>`: refused with an HTTP status before any document
   * byte when not allowed. The caller has given `socket` its error listener.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): Promise<void>;
}

/**
 * The collaborative queue: `/yjs/<threadId>` over the y-websocket protocol, one live Y.Doc
 * per thread with clients, kept equal to the event log by server writes.
 */
/** What collab uses. */
export interface CollabDeps {
  config: Pick<Config, "docIdleMs" | "editCoalesceMs" | "editLockMs" | "maxAwarenessBytes" | "sweepIntervalMs" | "collabPingMs">;
  auth: Pick<Auth, "verify">;
  store: Pick<EventStore, "workspaceOf" | "readThread" | "threadVersions">;
  engine: Engine;
  bus: Bus;
  lease: Lease;
  /** Document state is stored through the driver, beside the event log. */
  db: Pick<Database, "sql">;
  logger: Logger;
  metrics: Registry;
  /** The per-token connection budget this door shares with the tRPC door. */
  connections: TokenConnections;
}

/**
 * How long a lone instance gathers document updates before it stores them (Hocuspocus waits
 * 2 s): each write is an insert and a commit, on PGlite on this process's own thread, and
 * storing every keystroke took most of the server's time while people typed (device → device
 * p50 1.61 → 0.67 ms). Nothing anyone was told is kept waits on it: a commit of typed text (what
 * acknowledges typing) and an unload ask for the write and get it at once. A crash loses from
 * the store at most this much typing, which the devices still hold and send on reconnecting.
 */
const LONE_GATHER_MS = 1_000;

export function createCollab(deps: CollabDeps): Collab {
  const { config, auth, store, engine, bus } = deps;
  const logger = deps.logger.child({ part: "collab" });
  const clients = new Set<Client>();
  let closing = false;

  const docLoads = new Counter({
    name: "turnqueue_collab_document_loads_total",
    help: "Thread documents loaded and unloaded on this instance, by event (load, unload)",
    labelNames: ["event"],
    registers: [deps.metrics],
  });
  const docStore = createDocStore(deps.db.sql);
  // With Redis, another instance may read the store (catching up on what the bus lost), so
  // updates are stored at once; a lone instance is the store's only reader while it runs.
  const writer = new WriteBehind(docStore, logger, bus.shared ? 0 : LONE_GATHER_MS);
  const registry = new DocRegistry(
    {
      engine,
      events: store,
      bus,
      lease: deps.lease,
      docStore,
      writer,
      logger,
      editCoalesceMs: config.editCoalesceMs,
      editLockMs: config.editLockMs,
      maxAwarenessBytes: config.maxAwarenessBytes,
      instanceId: randomUUID(),
    },
    config.docIdleMs,
    (doc) => {
      for (const client of doc.clients) client.close(CLOSE.gone, "the thread was deleted");
    },
    {
      loaded: (threadId) => {
        docLoads.inc({ event: "load" });
        logger.debug({ threadId }, "document loaded");
      },
      unloaded: (threadId) => {
        docLoads.inc({ event: "unload" });
        logger.debug({ threadId }, "document unloaded");
      },
    },
  );

  // Every connection's ping, on one timer: a socket can go silent without closing (a device
  // that lost its network), and only a missed pong tells.
  const heartbeat = setInterval(() => clients.forEach((client) => client.heartbeat()), config.collabPingMs);
  heartbeat.unref();

  // Committed events reach every loaded document; until this subscription is live no document loads.
  const subscribed = engine.feed.subscribe((events) => registry.dispatch(events));
  // This instance's own commits reach its documents before the command answers as well.
  const stopReadingLocally = engine.feed.onLocalCommit((events) => registry.committedHere(events));
  // Text typed into an item and acknowledged to its typist is committed before the item
  // can be claimed, so the agent gets the last acknowledged text. Every add, turn end and
  // session report may claim now, so the common case costs nothing: no document of the
  // thread here, or one with nothing typed on its way to the log, means no wait.
  // A replica that missed its thread's last events without the bus saying so (a message
  // lost, an instance paused) would show an old queue until the thread's next event: on the
  // sweep interval, every document behind the log catches up with it.
  const sweeper = setInterval(() => void catchUpBehind().catch((err: unknown) => logger.debug({ err }, "document sweep skipped")), config.sweepIntervalMs);
  async function catchUpBehind() {
    const docs = [...registry.openDocs()];
    if (docs.length === 0) return;
    const versions = await store.threadVersions(docs.map((d) => d.threadId));
    for (const doc of docs) {
      if ((versions.get(doc.threadId) ?? 0) <= doc.state.version) continue;
      void doc.resync("missed").catch((err: unknown) => logger.warn({ err, threadId: doc.threadId }, "could not catch up with the log"));
    }
  }

  const removeBarrier = engine.addPreClaimBarrier(function commitTypedText(threadId) {
    const loading = registry.peek(threadId);
    if (!loading) return;
    const doc = registry.peekLoaded(threadId);
    if (doc && !doc.writing) return;
    return loading.then((d) => d.flush(), () => {});
  });

  new Gauge({
    name: "turnqueue_collab_documents_loaded",
    help: "Thread documents loaded on this instance",
    registers: [deps.metrics],
    collect() {
      this.set(registry.size);
    },
  });
  const refused = new Counter({
    name: "turnqueue_collab_connections_refused_total",
    help: "Collab upgrades refused before any document byte, by HTTP status",
    labelNames: ["status"],
    registers: [deps.metrics],
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES * 4 });
  const guardSocket = webSocketGuard(logger, "yjs");

  async function admit(req: IncomingMessage): Promise<{ threadId: string; principal: Principal; token: string } | { status: number; message: string }> {
    const url = new URL(req.url ?? "/", "http://localhost");
    let threadId: string;
    try {
      threadId = decodeURIComponent(url.pathname.slice(COLLAB_PATH.length));
    } catch {
      return { status: 400, message: "Bad Request" };
    }
    if (!Id.safeParse(threadId).success) return { status: 400, message: "Bad Request" };
    const token = url.searchParams.get("token");
    let principal: Principal;
    try {
      principal = await auth.verify(token);
    } catch {
      return { status: 401, message: "Unauthorized" };
    }
    if (principal.role === "agent") return { status: 403, message: "Forbidden" };
    // Another workspace's thread answers exactly like a missing one: its existence is not ours to tell.
    const workspace = await store.workspaceOf(threadId);
    if (workspace === null || workspace !== principal.workspaceId) return { status: 404, message: "Not Found" };
    return { threadId, principal, token: token! };
  }

  async function serve(ws: WebSocket, threadId: string, principal: Principal): Promise<void> {
    // The token was checked at the upgrade only: the socket ends when it expires (clients reconnect with a fresh one).
    const cancelExpiry = closeAtExpiry(ws, principal.expiresAt);
    const client = new Client(ws, principal);
    clients.add(client);
    logger.info({ door: "yjs", threadId, sub: principal.sub, workspaceId: principal.workspaceId }, "connection opened");
    // Messages that arrive while the document loads wait for it, in order.
    const early: RawData[] = [];
    let doc: ThreadDoc | null = null;
    ws.on("message", (data) => (doc ? receive(doc, client, data) : early.push(data)));
    // One listener does all of a connection's cleanup ('close' comes once; a `once` wrapper
    // and a closure per concern are memory every open connection holds).
    ws.on("close", () => {
      cancelExpiry();
      clients.delete(client);
      if (doc) {
        doc.detach(client);
        registry.idle(doc);
      }
      logger.debug({ door: "yjs", threadId, sub: principal.sub }, "connection closed");
    });
    try {
      const loaded = await registry.open(threadId);
      if (!client.open) return registry.idle(loaded);
      doc = loaded;
      doc.attach(client);
      for (const data of early.splice(0)) receive(doc, client, data);
    } catch (error) {
      if (error instanceof ThreadGoneError) return client.close(CLOSE.gone, "the thread does not exist");
      logger.error({ err: error, threadId }, "could not load a document");
      client.close(1011, "the document could not be loaded");
    }
  }

  function receive(doc: ThreadDoc, client: Client, data: RawData): void {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    try {
      doc.receive(client, bytes);
    } catch (err) {
      logger.error({ err, threadId: doc.threadId }, "collab message failed");
      client.close(1011, "internal error");
    }
  }

  return {
    handleUpgrade(req, socket, head) {
      const refuse = (status: number, message: string) => {
        refused.inc({ status: String(status) });
        logger.info({ door: "yjs", path: req.url?.split("?")[0], status }, "connection refused");
        socket.end(`HTTP/1.1 ${status} ${message}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      };
      (async () => {
        await subscribed;
        if (closing) return refuse(503, "Service Unavailable");
        const admitted = await admit(req);
        if ("status" in admitted) return refuse(admitted.status, admitted.message);
        if (socket.destroyed) return;
        // The token's slot is held as long as the TCP socket under the WebSocket lives.
        const release = deps.connections.take(admitted.token);
        if (!release) return refuse(429, "Too Many Requests");
        socket.on("close", release);
        wss.handleUpgrade(req, socket, head, (ws) => {
          guardSocket(ws);
          void serve(ws, admitted.threadId, admitted.principal);
        });
      })().catch((err: unknown) => {
        logger.error({ err }, "collab upgrade failed");
        refuse(503, "Service Unavailable");
      });
    },

    async close() {
      closing = true;
      clearInterval(sweeper);
      clearInterval(heartbeat);
      // Clients reconnect (1012) to whichever instance serves next; their documents are stored first.
      for (const client of clients) client.close(CLOSE.restarting, "server restarting");
      removeBarrier();
      stopReadingLocally();
      writer.stop();
      await registry.closeAll();
      await (await subscribed)();
      wss.close();
    },
  };
}
