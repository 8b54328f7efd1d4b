import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import * as syncProtocol from "y-protocols/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { CLOSE } from "../../src/collab/protocol.js";
import { ITEM_FIELDS } from "../../src/collab/schema.js";
import { frame, openRawWebSocket, type RawWebSocket } from "../support/raw-websocket.js";
import { seedPglite } from "../support/server.js";
import { serve } from "../server/process.js";
import { connect, type Client } from "../support/clients.js";

/**
 * Fuzzing the /yjs door of a real `turnqueue serve` process over raw TCP: random WebSocket
 * frames (on /trpc too), random y-websocket messages, and real Yjs updates made by random
 * (legal and illegal) writes to the thread's document, some of them corrupted. Every case gets a
 * fresh thread, and must leave the process alive, HTTP answering, no internal-error close
 * (1011), and, when the connection was refused, the thread exactly as it was (checked
 * again at the end, for anything that would land late). Memory must stay bounded.
 *
 * `npm test` runs a short pass with a fixed seed; `npm run fuzz` sets FUZZ_RUNS (and may
 * set FUZZ_SEED) for a long one.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 16);
/** Each frame property gets half the runs: a frame case is mostly refused before any document. */
const FRAME_RUNS = Math.max(4, Math.ceil(RUNS / 2));
/** A case takes well under a second on a loaded machine; the limit only catches a hang. */
const timeoutFor = (runs: number) => ({ timeout: 120_000 + runs * 3_000 });
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_202);

/** What a case may end with: answered (still open) or closed with a refusal code. */
const REFUSALS: number[] = [CLOSE.protocolError, CLOSE.invalidData, CLOSE.frameTooBig, CLOSE.malformed, CLOSE.forbiddenWrite, CLOSE.tooLarge];

const message = (...parts: ((e: encoding.Encoder) => void)[]) => {
  const e = encoding.createEncoder();
  for (const part of parts) part(e);
  return encoding.toUint8Array(e);
};
const SENTINEL = message(
  (e) => encoding.writeVarUint(e, 0),
  (e) => syncProtocol.writeSyncStep1(e, new Y.Doc()),
);
const TRPC_SENTINEL = JSON.stringify({ id: 1, method: "query", params: { path: "thread.list", input: {} } });
const isSyncStep2 = (m: Uint8Array) => m[0] === 0 && m[1] === syncProtocol.messageYjsSyncStep2;

describe("fuzzing the /yjs door (real server process)", () => {
  let dataDir: string;
  let server: Awaited<ReturnType<typeof serve>>;
  let trpc: Client;
  const refused: { threadId: string; before: unknown }[] = [];
  let rssBefore = 0;

  const snapshot = async (threadId: string) => {
    const { version, queue } = await trpc.thread.get.query({ threadId });
    return { version, items: queue.items.map((i) => ({ id: i.queueItemId, text: i.text, position: i.position, status: i.status })) };
  };
  const rss = async () => Number(/^process_resident_memory_bytes (\d+)/m.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1]);

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-fuzz-yjs-"));
    await seedPglite(dataDir);
    server = await serve(["--data-dir", dataDir, "--edit-coalesce-ms", "0", "--doc-idle-ms", "1000"]);
    trpc = connect(server, server.token);
    rssBefore = await rss();
  });
  afterAll(async () => {
    server?.child.kill("SIGTERM");
    await server?.exited;
    await rm(dataDir, { recursive: true, force: true });
  });

  /** A thread with an item, and a raw connection to its document that has its state. */
  async function freshThread(): Promise<{ threadId: string; raw: RawWebSocket; doc: Y.Doc; before: unknown }> {
    const { threadId } = await trpc.thread.create.mutate({ title: "fuzz" });
    await trpc.queue.add.mutate({ threadId, message: { messageId: crypto.randomUUID(), text: "an item" } });
    const before = await snapshot(threadId);
    const raw = await openRawWebSocket(server.url, `/yjs/${threadId}?token=${server.token}`);
    const answer = await ask(raw);
    expect(answer).toEqual({ answered: true });
    const doc = new Y.Doc();
    for (const m of raw.messages.filter(isSyncStep2)) {
      const decoder = decoding.createDecoder(m);
      decoding.readVarUint(decoder);
      syncProtocol.readSyncMessage(decoder, encoding.createEncoder(), doc, null);
    }
    return { threadId, raw, doc, before };
  }

  /**
   * Sends a request the door answers (a sync request on /yjs, a tRPC call on /trpc) and
   * waits for its answer or the connection's close.
   */
  async function ask(raw: RawWebSocket, door: "yjs" | "trpc" = "yjs"): Promise<{ answered: true } | { closed: number | null }> {
    const count = door === "yjs" ? () => raw.messages.filter(isSyncStep2).length : () => raw.texts.length;
    const answers = count();
    raw.write(door === "yjs" ? frame(SENTINEL) : frame(Buffer.from(TRPC_SENTINEL), { opcode: 0x1 }));
    let done = false;
    const answered = (async () => {
      while (!done && count() === answers) await new Promise((r) => setTimeout(r, 5));
      return { answered: true as const };
    })();
    const closed = raw.closed.then((c) => ({ closed: c?.code ?? null }));
    const outcome = await Promise.race([answered, closed]);
    done = true;
    return outcome;
  }

  /** Sends `bytes` on a fresh thread's connection and checks everything a case must leave true. */
  async function runCase(bytes: (doc: Y.Doc) => Uint8Array): Promise<void> {
    const { threadId, raw, doc, before } = await freshThread();
    try {
      raw.write(bytes(doc));
      const outcome = await ask(raw);
      expect(server.child.exitCode, server.stderr()).toBeNull();
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      if ("closed" in outcome && outcome.closed !== null) {
        expect(outcome.closed).not.toBe(1011);
        if (REFUSALS.includes(outcome.closed)) {
          expect(await snapshot(threadId)).toEqual(before);
          refused.push({ threadId, before });
        }
      }
    } finally {
      raw.destroy();
      doc.destroy();
    }
  }

  // ── Arbitraries ──────────────────────────────────────────────────────────────────────

  const bytes = fc.uint8Array({ maxLength: 300 });
  const json = fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.boolean(), fc.constant(null), fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 20 }), { maxKeys: 3 }).map((d) => ({ ...d })));
  const bigString = fc.integer({ min: 0, max: 40_000 }).map((n) => "z".repeat(n));

  /** One write to a replica of the thread's document, legal or not. */
  const write = fc.oneof(
    fc.record({ kind: fc.constant("type" as const), at: fc.nat(30), text: fc.string({ minLength: 1, maxLength: 20 }) }),
    fc.record({ kind: fc.constant("erase" as const), at: fc.nat(30), length: fc.integer({ min: 1, max: 5 }) }),
    fc.record({ kind: fc.constant("format" as const), at: fc.nat(30), length: fc.integer({ min: 1, max: 5 }), value: json }),
    fc.record({ kind: fc.constant("embed" as const), at: fc.nat(30), value: fc.oneof(json.filter((v) => v !== null && typeof v === "object"), bigString.map((s) => ({ s }))) }),
    fc.record({ kind: fc.constant("field" as const), key: fc.constantFrom(...ITEM_FIELDS, "extra"), value: json }),
    fc.record({ kind: fc.constant("position" as const), value: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom("a0", "Zz", "a0V", "")) }),
    fc.record({ kind: fc.constant("item" as const), key: fc.string({ minLength: 1, maxLength: 12 }), remove: fc.boolean() }),
    fc.record({ kind: fc.constant("meta" as const), key: fc.string({ maxLength: 10 }), value: json }),
    fc.record({ kind: fc.constant("root" as const), key: fc.string({ minLength: 1, maxLength: 10 }) }),
    fc.record({ kind: fc.constant("nested" as const), key: fc.constantFrom(...ITEM_FIELDS) }),
  );
  type Write = typeof write extends fc.Arbitrary<infer T> ? T : never;

  function apply(doc: Y.Doc, w: Write, pick: number): void {
    const items = doc.getMap<Y.Map<unknown>>("items");
    const keys = [...items.keys()];
    const item = items.get(keys[pick % Math.max(1, keys.length)]);
    const text = item?.get("text");
    const ytext = text instanceof Y.Text ? text : null;
    switch (w.kind) {
      case "type":
        ytext?.insert(w.at % (ytext.length + 1), w.text);
        break;
      case "erase":
        if (ytext && ytext.length > 0) ytext.delete(w.at % ytext.length, Math.min(w.length, ytext.length - (w.at % ytext.length)));
        break;
      case "format":
        if (ytext && ytext.length > 0) ytext.format(w.at % ytext.length, w.length, { attr: w.value });
        break;
      case "embed":
        ytext?.insertEmbed(w.at % (ytext.length + 1), w.value as object);
        break;
      case "field":
        item?.set(w.key, w.value);
        break;
      case "position":
        item?.set("position", w.value);
        break;
      case "item":
        if (w.remove && keys.length > 0) items.delete(keys[pick % keys.length]);
        else items.set(w.key, new Y.Map());
        break;
      case "meta":
        doc.getMap("meta").set(w.key, w.value);
        break;
      case "root":
        doc.getMap(w.key).set("x", 1);
        break;
      case "nested":
        item?.set(w.key, new Y.Map([["x", 1]]));
        break;
    }
  }

  /** What may happen to the bytes of an update before it is sent. */
  const corruption = fc.oneof(
    { weight: 3, arbitrary: fc.constant({ kind: "none" as const }) },
    fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
    fc.record({ kind: fc.constant("tail" as const) }),
  );
  type Corruption = typeof corruption extends fc.Arbitrary<infer T> ? T : never;

  function corrupt(update: Uint8Array, c: Corruption, doc: Y.Doc): Uint8Array {
    switch (c.kind) {
      case "none":
        return update;
      case "flip": {
        const copy = update.slice();
        if (copy.length > 0) copy[c.at % copy.length] = c.value;
        return copy;
      }
      case "truncate":
        return update.slice(0, update.length === 0 ? 0 : c.at % update.length);
      case "tail": {
        // Writes sent without the one they follow: missing dependencies.
        doc.getMap("items").set("tail-a", "a");
        const skipped = Y.encodeStateVector(doc);
        doc.getMap("items").set("tail-b", "b");
        return Y.mergeUpdates([update, Y.encodeStateAsUpdate(doc, skipped)]);
      }
    }
  }

  const awarenessEntries = fc.array(
    fc.record({
      clientId: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.nat()),
      clock: fc.nat(),
      state: fc.oneof(json.map((v) => JSON.stringify(v)), bigString.map((s) => JSON.stringify({ name: s })), fc.string({ maxLength: 20 })),
    }),
    { maxLength: 8 },
  );

  /** A y-websocket protocol message: well-formed or not, in a valid WebSocket frame. */
  const protocolMessage = fc.oneof(
    bytes.map((b) => () => b),
    fc.record({ writes: fc.array(fc.tuple(write, fc.nat()), { minLength: 1, maxLength: 6 }), corruption, step: fc.constantFrom(1, 2) }).map(
      ({ writes, corruption: c, step }) =>
        (doc: Y.Doc) => {
          const before = Y.encodeStateVector(doc);
          for (const [w, pick] of writes) apply(doc, w, pick);
          const update = corrupt(Y.encodeStateAsUpdate(doc, before), c, doc);
          return message(
            (e) => encoding.writeVarUint(e, 0),
            (e) => encoding.writeVarUint(e, step),
            (e) => encoding.writeVarUint8Array(e, update),
          );
        },
    ),
    fc.oneof(bytes, fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 5 }).map((pairs) => message((e) => {
      encoding.writeVarUint(e, pairs.length);
      for (const [client, clock] of pairs) {
        encoding.writeVarUint(e, client);
        encoding.writeVarUint(e, clock);
      }
    }))).map((sv) => () => message((e) => encoding.writeVarUint(e, 0), (e) => encoding.writeVarUint(e, 0), (e) => encoding.writeVarUint8Array(e, sv))),
    fc.oneof(bytes, awarenessEntries.map((entries) => message((e) => {
      encoding.writeVarUint(e, entries.length);
      for (const { clientId, clock, state } of entries) {
        encoding.writeVarUint(e, clientId);
        encoding.writeVarUint(e, clock);
        encoding.writeVarString(e, state);
      }
    }))).map((update) => () => message((e) => encoding.writeVarUint(e, 1), (e) => encoding.writeVarUint8Array(e, update))),
    fc.constant(() => message((e) => encoding.writeVarUint(e, 3))),
  );

  /** A WebSocket frame: any header bits, masked or not, a truthful or oversized length. */
  const mostly = <T>(usual: T, other: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: fc.constant(usual) }, { weight: 1, arbitrary: other });
  const rawFrame = fc.record({
    payload: fc.oneof(bytes, protocolMessage.map((make) => make(new Y.Doc()))),
    fin: mostly(true, fc.boolean()),
    rsv: mostly(0, fc.integer({ min: 0, max: 7 })),
    opcode: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0x1, 0x2, 0x8, 0x9, 0xa) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 15 }) }),
    masked: mostly(true, fc.boolean()),
    oversized: fc.option(fc.integer({ min: (1 << 22) + 1, max: 2 ** 40 }), { nil: undefined, freq: 4 }),
  });

  it("random y-websocket messages and corrupted real updates: no crash, no internal error, a refusal changes nothing", timeoutFor(RUNS), async () => {
    await fc.assert(
      fc.asyncProperty(protocolMessage, async (make) => runCase((doc) => frame(make(doc)))),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it("random WebSocket frames on /yjs: no crash, no internal error, a refusal changes nothing", timeoutFor(FRAME_RUNS), async () => {
    await fc.assert(
      fc.asyncProperty(rawFrame, async (f) =>
        runCase(() => frame(f.payload, { fin: f.fin, rsv: f.rsv, opcode: f.opcode, masked: f.masked, claimedLength: f.oversized })),
      ),
      { numRuns: FRAME_RUNS, seed: SEED },
    );
  });

  it("random WebSocket frames on /trpc: no crash, no internal error", timeoutFor(FRAME_RUNS), async () => {
    await fc.assert(
      fc.asyncProperty(rawFrame, async (f) => {
        const raw = await openRawWebSocket(server.url, "/trpc");
        try {
          raw.write(frame(f.payload, { fin: f.fin, rsv: f.rsv, opcode: f.opcode, masked: f.masked, claimedLength: f.oversized }));
          const outcome = await ask(raw, "trpc");
          expect(server.child.exitCode, server.stderr()).toBeNull();
          expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
          if ("closed" in outcome) expect(outcome.closed).not.toBe(1011);
        } finally {
          raw.destroy();
        }
      }),
      { numRuns: FRAME_RUNS, seed: SEED },
    );
  });

  it("afterwards: every refused thread is still as it was, and memory stayed bounded", timeoutFor(Math.ceil(RUNS / 10)), async () => {
    for (const { threadId, before } of refused) expect(await snapshot(threadId)).toEqual(before);
    expect(server.child.exitCode).toBeNull();
    expect(await rss()).toBeLessThan(rssBefore + 256 * 1024 * 1024);
  });
});
