import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { CLOSE } from "../../src/collab/protocol.js";
import { frame, openRawWebSocket } from "../support/raw-websocket.js";
import { seedPglite } from "../support/server.js";
import { serve } from "./process.js";
import { connect } from "../support/clients.js";

/**
 * One client's malformed WebSocket frame closes that client's connection with the RFC code
 * and nothing else: a real `turnqueue serve` process (an unhandled 'error' would end it)
 * keeps answering HTTP and serving documents. Every door that upgrades gets the same frames.
 */

/** A Yjs update of about 20 MB: real document content, far over any door's frame limit. */
function hugeUpdate(): Uint8Array {
  const doc = new Y.Doc();
  doc.getMap("items").set("x", "y".repeat(20 * 1024 * 1024));
  return Y.encodeStateAsUpdate(doc);
}

const cases: { name: string; bytes: () => Buffer; code: number }[] = [
  { name: "an unmasked client frame (82 02 00 00)", bytes: () => Buffer.from([0x82, 0x02, 0x00, 0x00]), code: CLOSE.protocolError },
  { name: "RSV1 set without a negotiated extension", bytes: () => frame(Buffer.from([0, 0]), { rsv: 0b100 }), code: CLOSE.protocolError },
  { name: "the reserved opcode 3", bytes: () => frame(Buffer.from([0, 0]), { opcode: 3 }), code: CLOSE.protocolError },
  { name: "a text frame that is not UTF-8", bytes: () => frame(Buffer.from([0xff, 0xfe, 0xfd]), { opcode: 1 }), code: CLOSE.invalidData },
  { name: "a length header over the maximum payload", bytes: () => frame(Buffer.alloc(4), { claimedLength: 2 ** 32 }), code: CLOSE.frameTooBig },
  { name: "a real 20 MB Yjs update", bytes: () => frame(hugeUpdate()), code: CLOSE.frameTooBig },
];

describe("bad WebSocket frames close only their connection (real server process)", { timeout: 180_000 }, () => {
  let dataDir: string;
  let server: Awaited<ReturnType<typeof serve>>;
  let threadId: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-frames-"));
    await seedPglite(dataDir);
    server = await serve(["--data-dir", dataDir]);
    ({ threadId } = await connect(server, server.token).thread.create.mutate({ title: "frames" }));
  });
  afterAll(async () => {
    server?.child.kill("SIGTERM");
    await server?.exited;
    await rm(dataDir, { recursive: true, force: true });
  });

  async function stillServing(): Promise<void> {
    expect(server.child.exitCode, server.stderr()).toBeNull();
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    // A y-websocket client still gets the thread's document.
    const doc = new Y.Doc();
    const provider = new WebsocketProvider(`${server.url.replace(/^http/, "ws")}/yjs`, threadId, doc, {
      WebSocketPolyfill: WebSocket as never,
      params: { token: server.token },
      disableBc: true,
    });
    try {
      await new Promise<void>((resolve) => provider.once("sync", () => resolve()));
      expect(doc.getMap("meta").get("threadId")).toBe(threadId);
    } finally {
      provider.destroy();
      doc.destroy();
    }
  }

  const doors = [
    { door: "/yjs", path: () => `/yjs/${threadId}?token=${server.token}` },
    { door: "/trpc", path: () => `/trpc?connectionParams=1` },
  ];

  for (const { door, path: pathOf } of doors) {
    for (const c of cases) {
      it(`${door}: ${c.name} closes with ${c.code}; the server keeps serving`, async () => {
        const raw = await openRawWebSocket(server.url, pathOf());
        raw.write(c.bytes());
        const closed = await raw.closed;
        raw.destroy();
        expect(closed?.code).toBe(c.code);
        await stillServing();
      });
    }
  }

  it("a request whose client goes away mid-body does not disturb the server", async () => {
    const { hostname, port } = new URL(server.url);
    const net = await import("node:net");
    await new Promise<void>((resolve) => {
      const socket = net.connect({ host: hostname, port: Number(port) }, () => {
        socket.write(`POST /trpc/thread.create HTTP/1.1\r\nHost: x\r\nauthorization: Bearer ${server.token}\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{"title":`);
        setTimeout(() => socket.destroy(), 50);
      });
      socket.on("close", () => resolve());
      socket.on("error", () => {});
    });
    await stillServing();
  });
});
