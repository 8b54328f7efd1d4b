import { randomBytes, randomUUID } from "node:crypto";
import * as encoding from "lib0/encoding";
import { WebsocketProvider } from "y-websocket";
import { WebSocket } from "ws";
import * as Y from "yjs";
import { readDoc, viewOfState, type DocView } from "../../src/collab/index.js";
import type { CommandInput } from "../../src/domain/index.js";
import { Command } from "../../src/domain/index.js";
import type { Config } from "../../src/config.js";
import { createTestDatabase } from "../support/postgres.js";
import { startTestServer, type TestServer, type TestServerOptions } from "../support/server.js";

/** Real server, real y-websocket clients: the pieces every collab suite shares. */

export async function startCollabServer(options: TestServerOptions = {}): Promise<TestServer> {
  return startTestServer({ ...options, config: { editCoalesceMs: 20, docIdleMs: 60_000, ...options.config } });
}

/**
 * Two instances on one fresh PostgreSQL database and one Redis, signing with one secret (a
 * token from either is good on both): the multi-instance suites' pair. `close` stops both
 * and drops the database.
 */
export async function startInstancePair(redisUrl: string, config: Partial<Config> = {}): Promise<{ a: TestServer; b: TestServer; close(): Promise<void> }> {
  const database = await createTestDatabase();
  const shared: Partial<Config> = { databaseUrl: database.url, redisUrl, secret: randomBytes(32).toString("base64url"), ...config };
  const started: TestServer[] = [];
  const close = async () => {
    for (const server of started) await server.close();
    await database.drop();
  };
  try {
    for (let n = 0; n < 2; n++) started.push(await startCollabServer({ config: shared }));
  } catch (error) {
    await close();
    throw error;
  }
  return { a: started[0]!, b: started[1]!, close };
}

export async function exec(server: TestServer, threadId: string, command: CommandInput, actor = "user:test") {
  return server.services.engine.execute(threadId, Command.parse(command), { actor });
}

export async function createThread(server: TestServer, texts: string[] = [], workspaceId = "local"): Promise<{ threadId: string; ids: string[] }> {
  const threadId = `t-${randomUUID()}`;
  await exec(server, threadId, { type: "thread.create", workspaceId, title: "collab" });
  const ids: string[] = [];
  for (const text of texts) ids.push(await addItem(server, threadId, text));
  return { threadId, ids };
}

export async function addItem(server: TestServer, threadId: string, text: string): Promise<string> {
  const queueItemId = `q-${randomUUID()}`;
  await exec(server, threadId, { type: "queue.add", queueItemId, message: { messageId: `m-${randomUUID()}`, text } });
  return queueItemId;
}

export interface Device {
  doc: Y.Doc;
  provider: WebsocketProvider;
  view(): DocView;
  text(itemId: string): Y.Text;
  item(itemId: string): Y.Map<unknown>;
  /** Every close the server sent this device (code, reason). */
  closes: { code: number; reason: string }[];
  destroy(): void;
}

export function connect(server: TestServer, threadId: string, token: string, options: { connect?: boolean } = {}): Device {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(`${server.wsUrl}/yjs`, threadId, doc, {
    WebSocketPolyfill: WebSocket as never,
    params: { token },
    disableBc: true,
    connect: options.connect ?? true,
    maxBackoffTime: 200,
  });
  const closes: Device["closes"] = [];
  provider.on("connection-close", (event) => {
    if (event) closes.push({ code: event.code, reason: event.reason });
  });
  const items = doc.getMap<Y.Map<unknown>>("items");
  return {
    doc,
    provider,
    closes,
    view: () => readDoc(doc),
    item: (id) => items.get(id)!,
    text: (id) => items.get(id)!.get("text") as Y.Text,
    destroy: () => {
      provider.destroy();
      doc.destroy();
    },
  };
}

import { until } from "../support/poll.js";

export const synced = (devices: Device[]) => until(() => devices.every((d) => d.provider.synced), () => devices.map((d) => d.provider.synced));

export async function projection(server: TestServer, threadId: string): Promise<DocView> {
  return viewOfState(await server.services.engine.load(threadId));
}

/**
 * Waits until every device shows the same document and that document is what the log says:
 * the end state of every convergence test.
 */
export async function converged(server: TestServer, threadId: string, devices: Device[]): Promise<DocView> {
  let last: unknown;
  await until(
    async () => {
      const expected = await projection(server, threadId);
      const views = devices.map((d) => d.view());
      last = { expected, views };
      return views.every((v) => JSON.stringify(v) === JSON.stringify(expected));
    },
    () => last,
  );
  return projection(server, threadId);
}

/** What a raw WebSocket to /yjs/<threadId> got: the HTTP refusal, or the messages and the close. */
export function rawConnect(server: TestServer, threadId: string, token?: string) {
  const query = token === undefined ? "" : `?token=${encodeURIComponent(token)}`;
  const ws = new WebSocket(`${server.wsUrl}/yjs/${encodeURIComponent(threadId)}${query}`);
  const messages: Uint8Array[] = [];
  ws.on("message", (data) => messages.push(new Uint8Array(data as Buffer)));
  const outcome = new Promise<{ refused: number } | { opened: true }>((resolve) => {
    ws.once("unexpected-response", (req, res) => {
      resolve({ refused: res.statusCode ?? 0 });
      res.resume();
      req.destroy();
    });
    ws.once("open", () => resolve({ opened: true }));
    ws.once("error", () => {});
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  return { ws, messages, outcome, closed };
}

/** A y-websocket protocol message built part by part. */
export const yMessage = (...parts: ((e: encoding.Encoder) => void)[]) => {
  const e = encoding.createEncoder();
  for (const part of parts) part(e);
  return encoding.toUint8Array(e);
};
