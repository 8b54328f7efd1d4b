/**
 * `npm run bench:collab`: edit propagation latency from one device to another through the
 * real collab endpoint (auth, validation, edit → command, persistence) with THREADS × 3
 * devices connected; the same latency through a bare y-protocols relay (no validation, no
 * persistence) measured in the same run, as a ratio; server memory per loaded document.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import v8 from "node:v8";
import vm from "node:vm";
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import * as syncProtocol from "y-protocols/sync";
import { WebsocketProvider } from "y-websocket";
import { WebSocket, WebSocketServer } from "ws";
import * as Y from "yjs";
import { loadConfig } from "../src/config.js";
import { Command } from "../src/domain/index.js";
import { startTurnqueue } from "../src/server.js";
import { createTestDatabase } from "../test/support/postgres.js";

const THREADS = Number(process.env.BENCH_THREADS ?? 200);
const DEVICES = 3;
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 250);
/** Edits in flight at once, each on its own thread. */
const CONCURRENCY = 8;
const DOC_IDLE_MS = 1_500;

// Every WebsocketProvider listens for the process's exit; 1,200 of them are expected here.
process.setMaxListeners(0);
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

interface Device {
  doc: Y.Doc;
  provider: WebsocketProvider;
}

function connectDevice(url: string, room: string, token: string | null): Device {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(url, room, doc, {
    WebSocketPolyfill: WebSocket as never,
    params: token ? { token } : {},
    disableBc: true,
  });
  return { doc, provider };
}

async function until(check: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Device 0 of a thread types one character; the time until device 1 has it. */
async function propagation(group: Device[]): Promise<number> {
  const [writer, reader] = group;
  const marker = String.fromCharCode(0x4e00 + Math.floor(Math.random() * 0x5000));
  const readerText = () => (reader.doc.getMap<Y.Map<unknown>>("items").values().next().value?.get("text") as Y.Text);
  const seen = new Promise<number>((resolve) => {
    const text = readerText();
    const observer = (event: Y.YTextEvent) => {
      if (event.delta.some((d) => typeof d.insert === "string" && d.insert.includes(marker))) {
        text.unobserve(observer);
        resolve(performance.now());
      }
    };
    text.observe(observer);
  });
  const writerText = writer.doc.getMap<Y.Map<unknown>>("items").values().next().value?.get("text") as Y.Text;
  const start = performance.now();
  writerText.insert(writerText.length, marker);
  return (await seen) - start;
}

async function measure(groups: Device[][]): Promise<number[]> {
  const samples: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, lane) => {
      while (next < SAMPLES) {
        next++;
        // Lanes take disjoint threads, so two edits never race on one text.
        const group = groups[(lane + CONCURRENCY * Math.floor(Math.random() * (groups.length / CONCURRENCY))) % groups.length];
        samples.push(await propagation(group));
      }
    }),
  );
  return samples.sort((a, b) => a - b);
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const ms = (n: number) => `${n.toFixed(2)} ms`;

/** The baseline: y-websocket's protocol relayed by y-protocols alone, one Y.Doc per room. */
async function startBareRelay(): Promise<{ url: string; close(): Promise<void> }> {
  const docs = new Map<string, { doc: Y.Doc; conns: Set<WebSocket> }>();
  const wss = new WebSocketServer({ noServer: true });
  const server = http.createServer();
  server.on("upgrade", (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      const name = (req.url ?? "/").slice(1).split("?")[0];
      let room = docs.get(name);
      if (!room) {
        const doc = new Y.Doc();
        const conns = new Set<WebSocket>();
        doc.on("update", (update: Uint8Array, origin: unknown) => {
          const e = encoding.createEncoder();
          encoding.writeVarUint(e, 0);
          syncProtocol.writeUpdate(e, update);
          const message = encoding.toUint8Array(e);
          for (const c of conns) if (c !== origin) c.send(message);
        });
        docs.set(name, (room = { doc, conns }));
      }
      const { doc, conns } = room;
      conns.add(ws);
      ws.on("close", () => conns.delete(ws));
      ws.on("message", (data: Buffer) => {
        const decoder = decoding.createDecoder(new Uint8Array(data));
        if (decoding.readVarUint(decoder) !== 0) return;
        const e = encoding.createEncoder();
        encoding.writeVarUint(e, 0);
        syncProtocol.readSyncMessage(decoder, e, doc, ws);
        if (encoding.length(e) > 1) ws.send(encoding.toUint8Array(e));
      });
      const e = encoding.createEncoder();
      encoding.writeVarUint(e, 0);
      syncProtocol.writeSyncStep1(e, doc);
      ws.send(encoding.toUint8Array(e));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => server.close(r));
    },
  };
}

async function connectAll(url: string, rooms: string[], token: string | null): Promise<Device[][]> {
  const groups = rooms.map((room) => Array.from({ length: DEVICES }, () => connectDevice(url, room, token)));
  const all = groups.flat();
  await until(() => all.every((d) => d.provider.synced), `${all.length} devices to sync`);
  return groups;
}

function disconnectAll(groups: Device[][]): void {
  for (const d of groups.flat()) {
    d.provider.destroy();
    d.doc.destroy();
  }
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-bench-collab-"));
  // The embedded PGlite by default; a fresh PostgreSQL database when TEST_DATABASE_URL is set.
  const pg = process.env.TEST_DATABASE_URL ? await createTestDatabase() : null;
  const config = {
    ...(await loadConfig({ env: {}, flags: { dataDir, port: "0", logLevel: "warn" } })),
    databaseUrl: pg?.url ?? null,
    docIdleMs: DOC_IDLE_MS,
    ...(process.env.BENCH_COALESCE_MS ? { editCoalesceMs: Number(process.env.BENCH_COALESCE_MS) } : {}),
  };
  const app = await startTurnqueue(config);
  console.log(`store: ${pg ? "PostgreSQL" : "embedded PGlite (in this process)"}; edits coalesced over ${config.editCoalesceMs} ms`);
  const relay = await startBareRelay();
  try {
    const { engine } = app.services;
    const token = await app.services.auth.issue({ sub: "bench", workspaceId: "local", role: "user" });
    const threads: string[] = [];
    for (let t = 0; t < THREADS; t++) {
      const threadId = `bench-${randomUUID()}`;
      await engine.execute(threadId, Command.parse({ type: "thread.create", workspaceId: "local" }), { actor: "user:bench" });
      await engine.execute(
        threadId,
        Command.parse({ type: "queue.add", queueItemId: `q-${threadId}`, message: { messageId: `m-${threadId}`, text: "queued while the agent works" } }),
        { actor: "user:bench" },
      );
      threads.push(threadId);
    }
    const wsUrl = `${app.url.replace(/^http/, "ws")}/yjs`;

    // The relay's documents start empty: seed each room with one item of the same shape.
    const seeded = await connectAll(relay.url, threads, null);
    for (const [d] of seeded) {
      const item = new Y.Map<unknown>();
      item.set("text", new Y.Text("queued while the agent works"));
      d.doc.getMap("items").set("q", item);
    }
    await until(() => seeded.every((g) => g.every((d) => d.doc.getMap("items").size === 1)), "relay rooms to be seeded");

    const served = await connectAll(wsUrl, threads, token);
    console.log(`connected: ${THREADS} threads × ${DEVICES} devices through Turnqueue and through the bare relay (${THREADS * DEVICES * 2} WebSockets)`);

    // Interleaved rounds so both see the same machine load.
    const ours: number[] = [];
    const bare: number[] = [];
    for (let round = 0; round < 2; round++) {
      ours.push(...(await measure(served)));
      bare.push(...(await measure(seeded)));
    }
    ours.sort((a, b) => a - b);
    bare.sort((a, b) => a - b);
    const [p50, p99, b50, b99] = [quantile(ours, 0.5), quantile(ours, 0.99), quantile(bare, 0.5), quantile(bare, 0.99)];
    console.log(`edit propagation device → device, ${ours.length} samples, ${CONCURRENCY} in flight:`);
    console.log(`  turnqueue /yjs : p50 ${ms(p50)}  p99 ${ms(p99)}`);
    console.log(`  bare relay     : p50 ${ms(b50)}  p99 ${ms(b99)}`);
    console.log(`  ratio          : p50 ×${(p50 / b50).toFixed(2)}  p99 ×${(p99 / b99).toFixed(2)}`);

    disconnectAll(seeded);
    disconnectAll(served);
    // Every document is still loaded (idle delay not over): measure with them, then without.
    await new Promise((r) => setTimeout(r, 200));
    gc();
    const loaded = process.memoryUsage().heapUsed;
    await new Promise((r) => setTimeout(r, DOC_IDLE_MS + 2_000));
    gc();
    const unloaded = process.memoryUsage().heapUsed;
    console.log(`server memory per loaded document: ${((loaded - unloaded) / THREADS / 1024).toFixed(1)} KiB (heap with ${THREADS} loaded ${(loaded / 2 ** 20).toFixed(1)} MiB, after unload ${(unloaded / 2 ** 20).toFixed(1)} MiB)`);
    console.log("limits: no fixed number; the ratio against the bare relay is the figure to watch (validation + commands + persistence overhead).");
  } finally {
    await relay.close();
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
    await pg?.drop();
  }
}

await main();
