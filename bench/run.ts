/**
 * `npm run bench`: Turnqueue measured as a user gets it, beside the tools people use instead.
 *
 * The server runs as its own process (`turnqueue serve`, the compiled server: run
 * `npm run build` first); the clients (the SDK over HTTP and WebSocket, y-websocket
 * providers) run here. Turnqueue is measured on PGlite and on PostgreSQL; the peers
 * (graphile-worker, pg-boss, Hocuspocus, @y/websocket-server) on the same PostgreSQL
 * database in the same run. Every figure is printed beside the peer's with the ratio, and
 * the whole table is written to bench/results/door-scale<N>.md (and .json).
 *
 *   TEST_DATABASE_URL / BENCH_DATABASE_URL   the PostgreSQL server (a scratch database is made and dropped)
 *   BENCH_SCALE=10        10× the work (documents, clients, items in a thread); growth is printed
 *                         against the last scale-1 results (`npm run bench:scale` runs scale 1
 *                         just before: a machine's speed varies between runs an hour apart)
 *   BENCH_ONLY=dispatch,handoff,enqueue,collab,long   some sections only
 *   BENCH_DB=pglite|postgres                          one database only
 *   BENCH_SECONDS=3       seconds per throughput measurement
 *   BENCH_PROFILE=dir     `--cpu-prof` the Turnqueue server into dir (read it with bench/profile-top.ts)
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { measureCollab, type CollabFigures, type Relay } from "./door/collab.js";
import { graphileDispatch, graphileEnqueue, pgBossEnqueue, pgBossHandoff, rawInsert } from "./door/peers.js";
import { spawnServer } from "./door/process.js";
import { ms, rate, ratio, type Latency } from "./door/stats.js";
import {
  dispatchLatency, enqueueThroughput, handoffLatency, longThread, startServer, threadsWithAnItem, type LongThread,
} from "./door/turnqueue.js";

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ONLY = new Set((process.env.BENCH_ONLY ?? "dispatch,handoff,enqueue,collab,long").split(","));
const PROFILE = process.env.BENCH_PROFILE ? path.resolve(process.env.BENCH_PROFILE) : null;
const work = {
  samples: 200,
  clients: 64 * SCALE,
  documents: 200 * SCALE,
  devices: 3,
  serialSamples: 300,
  burstRounds: 3,
  items: 1_000 * SCALE,
  drained: 100,
  // A quick look while developing, e.g. BENCH_WORK='{"samples":20,"documents":10}'.
  ...(process.env.BENCH_WORK ? (JSON.parse(process.env.BENCH_WORK) as object) : {}),
};
const pgServer = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? null;
const dbs = (process.env.BENCH_DB ?? "pglite,postgres").split(",").filter((d) => d !== "postgres" || pgServer);
const here = path.dirname(fileURLToPath(import.meta.url));

type Throughput = { perSecond: number } & Latency;
interface Figures {
  dispatch?: Latency;
  handoff?: Latency;
  enqueueOwn?: Throughput;
  enqueueOne?: Throughput;
  long?: LongThread;
  collab?: CollabFigures;
}
interface Results {
  scale: number;
  at: string;
  load: number[];
  turnqueue: Partial<Record<"pglite" | "postgres", Figures>>;
  peers: {
    graphileDispatch?: Latency;
    pgBossHandoff?: Latency;
    graphileEnqueue?: Throughput;
    pgBossEnqueue?: Throughput;
    rawInsert?: Throughput;
    hocuspocus?: CollabFigures;
    yWebsocket?: CollabFigures;
  };
}

const log = (line: string) => console.log(line);
/** A document as Turnqueue serves it, once measured: the peers relay the same content. */
let turnqueueDocument: Uint8Array | undefined;
const results: Results = { scale: SCALE, at: new Date().toISOString(), load: os.loadavg(), turnqueue: {}, peers: {} };

async function scratchDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `tq_bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: pgServer! });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(pgServer!);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: pgServer! });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

async function benchTurnqueue(db: "pglite" | "postgres", databaseUrl: string | null): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "tq-bench-"));
  const server = await startServer({ dataDir, databaseUrl, cpuProfDir: PROFILE, docIdleMs: 600_000 });
  const f: Figures = (results.turnqueue[db] = {});
  log(`\nTurnqueue on ${db} (server pid ${server.pid}, ${server.url})`);
  try {
    if (ONLY.has("dispatch")) {
      f.dispatch = await dispatchLatency(server, work.samples);
      log(`  queue.add (idle thread) → handler entry   p50 ${ms(f.dispatch.p50)} ms  p99 ${ms(f.dispatch.p99)} ms`);
    }
    if (ONLY.has("handoff")) {
      f.handoff = await handoffLatency(server, work.samples);
      log(`  turn ended → next handler entry           p50 ${ms(f.handoff.p50)} ms  p99 ${ms(f.handoff.p99)} ms`);
    }
    if (ONLY.has("enqueue")) {
      f.enqueueOwn = await enqueueThroughput(server, work.clients, SECONDS, false);
      log(`  queue.add, ${work.clients} clients, own threads       ${rate(f.enqueueOwn.perSecond)}  p50 ${ms(f.enqueueOwn.p50)} ms  p99 ${ms(f.enqueueOwn.p99)} ms`);
      f.enqueueOne = await enqueueThroughput(server, work.clients, SECONDS, true);
      log(`  queue.add, ${work.clients} clients, one thread        ${rate(f.enqueueOne.perSecond)}  p50 ${ms(f.enqueueOne.p50)} ms  p99 ${ms(f.enqueueOne.p99)} ms`);
    }
    if (ONLY.has("long")) {
      f.long = await longThread(server, work.items, work.drained);
      log(`  queue.add on a ${work.items}-item thread: first tenth p50 ${ms(f.long.first.p50)} ms, last tenth p50 ${ms(f.long.last.p50)} ms (×${(f.long.last.p50 / f.long.first.p50).toFixed(2)})`);
      log(`  drain: ${f.long.drainLong.toFixed(0)}/s with ${work.items} queued, ${f.long.drainShort.toFixed(0)}/s with ${work.drained}`);
    }
    if (ONLY.has("collab")) {
      const rooms = await threadsWithAnItem(server, work.documents);
      const measured = await measureCollab({
        relay: "turnqueue", server, url: `${server.url.replace(/^http/, "ws")}/yjs`, rooms, tokenFor: (device) => server.token("user", "bench", `device-${device}`),
        devices: work.devices, serialSamples: work.serialSamples, burstRounds: work.burstRounds,
      });
      f.collab = measured.figures;
      turnqueueDocument = measured.document;
      printCollab("turnqueue /yjs", f.collab);
    }
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function printCollab(label: string, c: CollabFigures): void {
  log(`  Yjs edit device → device, one at a time  p50 ${ms(c.serial.p50)} ms  p99 ${ms(c.serial.p99)} ms   [${label}]`);
  log(`  Yjs edit, ${work.documents} documents at once       p99 ${ms(c.burst.p99)} ms`);
  log(`  heap per loaded document                 ${(c.heapPerDoc / 1024).toFixed(1)} kB (the document: ${c.documentBytes} bytes as an update)`);
}

async function benchPeers(databaseUrl: string): Promise<void> {
  const p = results.peers;
  log(`\nPeers on the same PostgreSQL database`);
  if (ONLY.has("dispatch")) {
    p.graphileDispatch = await graphileDispatch(databaseUrl, work.samples);
    log(`  graphile-worker addJob → task entry       p50 ${ms(p.graphileDispatch.p50)} ms  p99 ${ms(p.graphileDispatch.p99)} ms`);
  }
  if (ONLY.has("handoff")) {
    p.pgBossHandoff = await pgBossHandoff(databaseUrl, work.samples);
    log(`  pg-boss key_strict_fifo complete(A) → B    p50 ${ms(p.pgBossHandoff.p50)} ms  p99 ${ms(p.pgBossHandoff.p99)} ms`);
  }
  if (ONLY.has("enqueue")) {
    p.graphileEnqueue = await graphileEnqueue(databaseUrl, work.clients, SECONDS);
    log(`  graphile-worker addJob, ${work.clients} clients      ${rate(p.graphileEnqueue.perSecond)}`);
    p.pgBossEnqueue = await pgBossEnqueue(databaseUrl, work.clients, SECONDS);
    log(`  pg-boss send, ${work.clients} clients                ${rate(p.pgBossEnqueue.perSecond)}`);
    p.rawInsert = await rawInsert(databaseUrl, work.clients, SECONDS);
    log(`  raw single-row insert, ${work.clients} clients       ${rate(p.rawInsert.perSecond)}`);
  }
  if (ONLY.has("collab")) {
    const rooms = Array.from({ length: work.documents }, (_, i) => `doc-${i}`);
    for (const relay of ["hocuspocus", "y-websocket"] as const satisfies Relay[]) {
      const server = await spawnServer({
        label: relay,
        args: [path.join(here, "servers", `${relay}.mjs`)],
        env: { BENCH_DATABASE_URL: databaseUrl },
        ready: /serving (\S+)/,
      });
      try {
        const { figures } = await measureCollab({
          relay, server, url: server.url, rooms, tokenFor: null,
          devices: work.devices, serialSamples: work.serialSamples, burstRounds: work.burstRounds, seed: turnqueueDocument,
        });
        if (relay === "hocuspocus") p.hocuspocus = figures;
        else p.yWebsocket = figures;
        printCollab(relay, figures);
      } finally {
        await server.stop();
      }
    }
  }
}

/** The markdown table: every Turnqueue figure beside its peer's, with the ratio and the aim. */
function table(r: Results, base: Results | null): string {
  const { pglite: L, postgres: P } = r.turnqueue;
  const q = r.peers;
  const pair = (x?: Latency) => (x ? `${ms(x.p50)} / ${ms(x.p99)} ms` : "–");
  const lat = (x: Latency | undefined, peer: Latency | undefined) =>
    x ? `${pair(x)} (${ratio(x.p50 / (peer?.p50 ?? NaN))} / ${ratio(x.p99 / (peer?.p99 ?? NaN))})` : "–";
  const thr = (x: Throughput | undefined, peer: Throughput | undefined) => (x ? `${rate(x.perSecond)} (${ratio(x.perSecond / (peer?.perSecond ?? NaN))})` : "–");
  const one = (d?: Figures) => (d?.enqueueOne && d.enqueueOwn ? `${rate(d.enqueueOne.perSecond)} (${ratio(d.enqueueOne.perSecond / d.enqueueOwn.perSecond)} of own threads)` : "–");
  const growth = (d?: Figures) => (d?.long ? `×${(d.long.last.p50 / d.long.first.p50).toFixed(2)} (p50 ${ms(d.long.first.p50)} → ${ms(d.long.last.p50)} ms)` : "–");
  const drain = (d?: Figures) => (d?.long ? `${d.long.drainLong.toFixed(0)}/s vs ${d.long.drainShort.toFixed(0)}/s (${ratio(d.long.drainLong / d.long.drainShort)})` : "–");
  const serial = (d: CollabFigures | undefined, peer: CollabFigures | undefined) => lat(d?.serial, peer?.serial);
  const burst = (d: CollabFigures | undefined, peer: CollabFigures | undefined) =>
    d ? `${ms(d.burst.p99)} ms (${ratio(d.burst.p99 / (peer?.burst.p99 ?? NaN))})` : "–";
  const heap = (d: CollabFigures | undefined) =>
    d ? `${(d.heapPerDoc / 1024).toFixed(1)} kB (${ratio(d.heapPerDoc / (q.yWebsocket?.heapPerDoc ?? NaN))} y-websocket)` : "–";
  const kb = (c?: CollabFigures) => (c ? `${(c.heapPerDoc / 1024).toFixed(1)} kB` : "–");
  const rows = [
    ["work", "peer (same run, same PostgreSQL)", "Turnqueue on PGlite (ratio)", "Turnqueue on PostgreSQL (ratio)", "aim"],
    ["`queue.add` on an idle thread → agent handler entry, p50 / p99", `graphile-worker \`addJob\` → task entry: ${pair(q.graphileDispatch)}`, lat(L?.dispatch, q.graphileDispatch), lat(P?.dispatch, q.graphileDispatch), "≤ 1×"],
    ["turn ended → next item's handler entry, same thread, p50 / p99", `pg-boss \`key_strict_fifo\` complete(A) → B: ${pair(q.pgBossHandoff)}`, lat(L?.handoff, q.pgBossHandoff), lat(P?.handoff, q.pgBossHandoff), "≤ 1×"],
    [`enqueue, ${work.clients} concurrent clients, own threads`, `graphile \`addJob\` ${rate(q.graphileEnqueue?.perSecond ?? NaN)}; pg-boss \`send\` ${rate(q.pgBossEnqueue?.perSecond ?? NaN)}; raw insert ${rate(q.rawInsert?.perSecond ?? NaN)}`, thr(L?.enqueueOwn, q.graphileEnqueue), thr(P?.enqueueOwn, q.graphileEnqueue), "≥ 1.5× graphile"],
    [`enqueue, ${work.clients} concurrent clients, one thread`, "–", one(L), one(P), "≥ 0.8× of own threads"],
    ["Yjs edit device → device, one at a time, p50 / p99", `Hocuspocus: ${pair(q.hocuspocus?.serial)}; @y/websocket-server: ${pair(q.yWebsocket?.serial)}`, serial(L?.collab, q.hocuspocus), serial(P?.collab, q.hocuspocus), "≤ 1× Hocuspocus"],
    [`same, ${work.documents} documents editing at once, p99`, `Hocuspocus ${ms(q.hocuspocus?.burst.p99 ?? NaN)} ms; @y/websocket-server ${ms(q.yWebsocket?.burst.p99 ?? NaN)} ms`, burst(L?.collab, q.hocuspocus), burst(P?.collab, q.hocuspocus), "≤ 1× Hocuspocus"],
    [`\`queue.add\` latency, last tenth of a ${work.items}-item thread ÷ first tenth`, "–", growth(L), growth(P), "≤ 1.2×"],
    [`drain, first ${work.drained} items with ${work.items} queued vs with ${work.drained}`, "–", drain(L), drain(P), "≈ 1×"],
    [`server heap per loaded document (from half of them loaded to all; every server holds Turnqueue's document, ${(L?.collab ?? P?.collab)?.documentBytes ?? "–"} bytes as an update)`, `Hocuspocus ${kb(q.hocuspocus)}, y-websocket ${kb(q.yWebsocket)}`, heap(L?.collab), heap(P?.collab), "≤ 1× y-websocket"],
  ];
  const md = [
    `# Turnqueue at the door, scale ${r.scale}`,
    "",
    `${r.at}; ${os.cpus().length} cores, load average at start ${r.load.map((x) => x.toFixed(1)).join(" / ")} (other work on the machine makes every figure noisier). ` +
      "Ratios are Turnqueue ÷ peer: below 1 is better for latency and memory, above 1 for throughput.",
    "",
    ...rows.map((cells, i) => `| ${cells.join(" | ")} |${i === 0 ? `\n|${" --- |".repeat(cells.length)}` : ""}`),
  ];
  if (base && base.scale !== r.scale) md.push("", growthTable(r, base));
  return `${md.join("\n")}\n`;
}

/** How each figure grew from an earlier, smaller run: work grew by scale ÷ base.scale. */
function growthTable(r: Results, base: Results): string {
  const rows: string[][] = [];
  const add = (what: string, now: number | undefined, before: number | undefined) => {
    if (now === undefined || before === undefined) return;
    rows.push([what, before.toFixed(2), now.toFixed(2), `×${(now / before).toFixed(2)}`]);
  };
  for (const db of ["pglite", "postgres"] as const) {
    const n = r.turnqueue[db];
    const b = base.turnqueue[db];
    if (!n || !b) continue;
    add(`${db}: queue.add, all clients, own threads (/s)`, n.enqueueOwn?.perSecond, b.enqueueOwn?.perSecond);
    add(`${db}: queue.add p99, all clients, own threads (ms)`, n.enqueueOwn?.p99, b.enqueueOwn?.p99);
    add(`${db}: queue.add p50, last tenth of the long thread (ms)`, n.long?.last.p50, b.long?.last.p50);
    add(`${db}: drain with the long thread queued (/s)`, n.long?.drainLong, b.long?.drainLong);
    add(`${db}: Yjs edit p99, all documents at once (ms)`, n.collab?.burst.p99, b.collab?.burst.p99);
    add(`${db}: heap per loaded document (kB)`, n.collab && n.collab.heapPerDoc / 1024, b.collab && b.collab.heapPerDoc / 1024);
  }
  add("Hocuspocus: Yjs edit p99, all documents at once (ms)", r.peers.hocuspocus?.burst.p99, base.peers.hocuspocus?.burst.p99);
  add("graphile addJob, all clients (/s)", r.peers.graphileEnqueue?.perSecond, base.peers.graphileEnqueue?.perSecond);
  return [
    `## Growth from scale ${base.scale} (${base.at}) to scale ${r.scale}: the work grew ×${r.scale / base.scale}`,
    "",
    "| figure | before | now | growth |",
    "| --- | --- | --- | --- |",
    ...rows.map((c) => `| ${c.join(" | ")} |`),
  ].join("\n");
}

if (!existsSync(path.join(here, "..", "dist", "src", "cli.js"))) throw new Error("the server is not built: run `npm run build` first");
log(`npm run bench — scale ${SCALE}: ${JSON.stringify(work)}; load average ${results.load.map((x) => x.toFixed(1)).join(" ")}`);
if (PROFILE) await mkdir(PROFILE, { recursive: true });
for (const db of dbs) {
  if (db === "pglite") await benchTurnqueue("pglite", null);
  else {
    const scratch = await scratchDatabase();
    try {
      await benchTurnqueue("postgres", scratch.url);
      await benchPeers(scratch.url);
    } finally {
      await scratch.drop();
    }
  }
}
if (!pgServer) log("\nPostgreSQL and the peers: SKIPPED (set TEST_DATABASE_URL or BENCH_DATABASE_URL)");

const out = path.join(here, "results");
await mkdir(out, { recursive: true });
const basePath = path.join(out, "door-scale1.json");
const base = SCALE !== 1 && existsSync(basePath) ? (JSON.parse(await readFile(basePath, "utf8")) as Results) : null;
const markdown = table(results, base);
await writeFile(path.join(out, `door-scale${SCALE}.md`), markdown);
await writeFile(path.join(out, `door-scale${SCALE}.json`), `${JSON.stringify(results, null, 2)}\n`);
log(`\n${markdown}`);
log(`written to bench/results/door-scale${SCALE}.md`);
