import { HocuspocusProvider, HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import { WebsocketProvider } from "y-websocket";
import { WebSocket } from "ws";
import * as Y from "yjs";
import type { ServerProcess } from "./process.js";
import { latency, until, type Latency } from "./stats.js";

/** Edits of one device, seen by another device of the same document, through one server. */

// Every WebsocketProvider listens for the process's exit; thousands of them are expected here.
process.setMaxListeners(0);

export type Relay = "turnqueue" | "hocuspocus" | "y-websocket";

interface Device {
  doc: Y.Doc;
  synced(): boolean;
  destroy(): void;
}

function connect(relay: Relay, url: string, room: string, token: string | null): Device {
  const doc = new Y.Doc();
  if (relay === "hocuspocus") {
    // One socket per device, as a browser tab has.
    const socket = new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: WebSocket });
    const provider = new HocuspocusProvider({ websocketProvider: socket, name: room, document: doc });
    provider.attach();
    return { doc, synced: () => provider.synced, destroy: () => (provider.destroy(), socket.destroy(), doc.destroy()) };
  }
  const provider = new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WebSocket as never, params: token ? { token } : {}, disableBc: true });
  return { doc, synced: () => provider.synced, destroy: () => (provider.destroy(), doc.destroy()) };
}

const itemText = (doc: Y.Doc): Y.Text | undefined =>
  doc.getMap<Y.Map<unknown>>("items").values().next().value?.get("text") as Y.Text | undefined;

/** Device 0 of a document types one character; the time until device 1 has it. */
async function propagation(group: Device[]): Promise<number> {
  const [writer, reader] = group as [Device, Device];
  const marker = String.fromCharCode(0x4e00 + Math.floor(Math.random() * 0x5000));
  const text = itemText(reader.doc)!;
  const seen = new Promise<number>((resolve) => {
    const observer = (event: Y.YTextEvent) => {
      if (event.delta.some((d) => typeof d.insert === "string" && d.insert.includes(marker))) {
        text.unobserve(observer);
        resolve(performance.now());
      }
    };
    text.observe(observer);
  });
  const written = itemText(writer.doc)!;
  const start = performance.now();
  written.insert(written.length, marker);
  return (await seen) - start;
}

export interface CollabFigures {
  /** One edit in flight at a time, on documents taken at random. */
  serial: Latency;
  /** Every document edited at once, a few rounds. */
  burst: Latency;
  /** Server heap per loaded document (its devices connected), bytes. */
  heapPerDoc: number;
  /** The size of one document as a Yjs update, bytes. */
  documentBytes: number;
}

export async function measureCollab(options: {
  relay: Relay;
  server: ServerProcess;
  /** The WebSocket URL the provider takes (room names are appended by it). */
  url: string;
  rooms: string[];
  /** Each device signs in as a user of its own (a person's devices share a token; 200 people do not), or not at all. */
  tokenFor: ((device: number) => Promise<string>) | null;
  devices: number;
  serialSamples: number;
  burstRounds: number;
  /**
   * For the peers (whose rooms start empty): the document each room starts with, Turnqueue's
   * own (the `document` of its run), so that every server holds the same content and the heap
   * compares the servers, not the documents.
   */
  seed?: Uint8Array;
}): Promise<{ figures: CollabFigures; /** One document as its devices hold it (a Yjs update). */ document: Uint8Array }> {
  const { relay, server, url, rooms, tokenFor } = options;
  const groups: Device[][] = [];
  // Heap per document is the growth from half the documents loaded to all of them: what
  // every server spends once (code compiled on first use, pools, buffers) is not per document.
  const half = Math.max(1, Math.floor(rooms.length / 2));
  let heapAtHalf = 0;
  // Connected in slices, as users arrive, so the server is not measured at its connect storm.
  for (let i = 0, end = 0; i < rooms.length; i = end) {
    end = Math.min(i + 100, i < half ? half : rooms.length);
    const slice = await Promise.all(rooms.slice(i, end).map(async (room, r) =>
      Promise.all(Array.from({ length: options.devices }, async (_, d) => connect(relay, url, room, tokenFor ? await tokenFor((i + r) * options.devices + d) : null))),
    ));
    groups.push(...slice);
    await until(() => slice.flat().every((d) => d.synced()), `${relay}: devices to sync`);
    if (relay !== "turnqueue") {
      if (!options.seed) throw new Error(`${relay}: no document to start its rooms with (Turnqueue's is measured first)`);
      for (const [first] of slice) Y.applyUpdate(first!.doc, options.seed);
    }
    await until(() => slice.every((g) => g.every((d) => itemText(d.doc) !== undefined)), `${relay}: every device to see its item`);
    if (end === half) heapAtHalf = await server.heapUsed();
  }
  const heapPerDoc = rooms.length > half ? ((await server.heapUsed()) - heapAtHalf) / (rooms.length - half) : 0;
  const document = Y.encodeStateAsUpdate(groups[0]![0]!.doc);

  const serial: number[] = [];
  for (let i = 0; i < options.serialSamples; i++) serial.push(await propagation(groups[Math.floor(Math.random() * groups.length)]!));
  const burst: number[] = [];
  for (let round = 0; round < options.burstRounds; round++) burst.push(...(await Promise.all(groups.map(propagation))));

  for (const d of groups.flat()) d.destroy();
  return { figures: { serial: latency(serial), burst: latency(burst), heapPerDoc, documentBytes: document.byteLength }, document };
}
