import { randomUUID } from "node:crypto";
import { WebsocketProvider } from "y-websocket";
import { WebSocket } from "ws";
import * as Y from "yjs";
import { readDoc, viewOfState, type DocView } from "../../src/collab/index.js";
import type { CommandInput } from "../../src/domain/index.js";
import { Command } from "../../src/domain/index.js";
import { startTestServer, type TestServer, type TestServerOptions } from "../support/server.js";

/** Real server, real y-websocket clients: the pieces every collab suite shares. */

export async function startCollabServer(options: TestServerOptions = {}): Promise<TestServer> {
  return startTestServer({ ...options, config: { editCoalesceMs: 20, docIdleMs: 60_000, ...options.config } });
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
export { until };

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
