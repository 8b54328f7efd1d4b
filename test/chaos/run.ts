import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { TRPCClientError } from "@trpc/client";
import { createTurnqueueClient, type ThreadQueue } from "../../client/index.js";
import { createAuth } from "../../src/auth/tokens.js";
import type { StoredEvent } from "../../src/domain/index.js";
import { openDatabase } from "../../src/store/database.js";
import { rebuildProjections } from "../../src/store/rebuild.js";
import { connect, type Client as Api } from "../support/clients.js";
import { projectionRows } from "../support/projections.js";
import { PrivateRedis } from "../support/private-redis.js";
import { seedPglite } from "../support/server.js";
import { check, type Violation } from "./checker.js";
import type { AgentRecord, Op, RunHistory } from "./history.js";
import { Recorder } from "./history.js";
import { AgentProcess, BlackholeProxy, Instance, PrivatePostgres } from "./infra.js";
import { DISPATCH_TIMEOUT_MS, NEMESES, type Nemesis, type Targets } from "./nemesis.js";
import { prng, type Random } from "./random.js";

export interface ScenarioOptions {
  nemesis: keyof typeof NEMESES;
  seed: number;
  /** How long clients issue operations while the nemesis strikes. */
  workloadMs: number;
  threads: number;
  /** Logical users, each a serial client bound to one instance. */
  clients: number;
  /** A PostgreSQL cluster of the run's own, shared by scenarios (one database each). */
  postgres: PrivatePostgres | null;
  /** Whether clients also type into documents (default true). */
  typing?: boolean;
  /** Strikes at least this many times, however long the workload (default 1). */
  minStrikes?: number;
  log?: (line: string) => void;
}

export interface ScenarioResult {
  nemesis: string;
  seed: number;
  operations: number;
  acknowledged: number;
  /** Acknowledged typing (a device's flush answered), among `acknowledged`. */
  typed: number;
  unknown: number;
  violations: Violation[];
  /** The faults as struck, for the report. */
  faults: string[];
  /** Every operation that did not come back ok (for looking into a run by hand). */
  debug?: Op[];
  /** What each instance and the agent runtime wrote to stderr (warnings), for a violation's report. */
  logs?: Record<string, string>;
}

const SWEEP_MS = 1_000;
const CALL_TIMEOUT_MS = 8_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A definite refusal (the server said no, and changed nothing) or an unknown outcome (no answer, or "try again"). */
function classify(error: unknown): { outcome: "fail" | "unknown"; error: string } {
  if (error instanceof TRPCClientError) {
    const data = error.data as { code?: string; reason?: string } | undefined;
    if (data?.code && ["CONFLICT", "NOT_FOUND", "BAD_REQUEST", "FORBIDDEN"].includes(data.code)) {
      return { outcome: "fail", error: `${data.code}${data.reason ? ` ${data.reason}` : ""}` };
    }
    return { outcome: "unknown", error: data?.code ?? error.message.slice(0, 120) };
  }
  return { outcome: "unknown", error: (error as Error)?.message?.slice(0, 120) ?? String(error) };
}

/** Every call gives up after CALL_TIMEOUT_MS (a black-holed or stopped instance never answers): its outcome is unknown. */
const timed = () => ({ signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });

/** Retries a call until the server acknowledges it (setup and the end of the run, not the history). */
async function surely<T>(call: () => Promise<T>, deadlineMs = 60_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (classify(error).outcome === "fail" || Date.now() > deadline) throw error;
      await sleep(200);
    }
  }
}

interface Item {
  threadId: string;
  queueItemId: string;
  messageId: string;
  /** Each text written is unique: "<messageId> v<n>". */
  versions: number;
  /** The last text the item's owner saw acknowledged. */
  text: string;
}

/**
 * One user: issues random operations, one at a time, through one instance's API and
 * document, on items it added (so each item has one writer and its texts one order).
 */
class Client {
  readonly items: Item[] = [];
  private readonly replicas = new Map<string, ThreadQueue>();
  private readonly sdk: ReturnType<typeof createTurnqueueClient>;
  private readonly api: Api;
  private adds = 0;

  constructor(
    readonly name: string,
    private readonly instance: Instance,
    token: string,
    private readonly threads: string[],
    private readonly recorder: Recorder,
    private readonly random: Random,
    private readonly typing: boolean,
  ) {
    this.api = connect(instance, token);
    this.sdk = createTurnqueueClient({ url: instance.url, token });
  }

  replica(threadId: string): ThreadQueue {
    let replica = this.replicas.get(threadId);
    if (!replica) {
      replica = this.sdk.openThreadQueue(threadId, { presence: { name: this.name } });
      this.replicas.set(threadId, replica);
    }
    return replica;
  }

  get openReplicas(): [string, ThreadQueue][] {
    return [...this.replicas];
  }

  async step(): Promise<void> {
    const r = this.random;
    const roll = r.next();
    const item = this.items.length > 0 ? r.pick(this.items) : null;
    if (roll < 0.35 || !item) return this.add(r.pick(this.threads));
    if (roll < 0.5) return this.edit(item);
    if (roll < 0.65) return this.typing ? this.type(item) : this.edit(item);
    if (roll < 0.75) return this.move(item);
    if (roll < 0.83) return this.remove(item);
    if (roll < 0.86) return this.itemCommand("sendNow", item);
    if (roll < 0.89) return this.itemCommand("retry", item);
    if (roll < 0.94) return this.threadCommand("pause", item.threadId);
    return this.threadCommand("resume", item.threadId);
  }

  private base(type: Op["type"], threadId: string, extra: Partial<Op> = {}) {
    return { client: this.name, instance: this.instance.name, type, threadId, ...extra };
  }

  private async add(threadId: string): Promise<void> {
    const messageId = `${this.name}-m${this.adds++}`;
    const text = `${messageId} v0`;
    await this.recorder.record(
      this.base("add", threadId, { messageId, text, key: messageId }),
      () => this.api.queue.add.mutate({ threadId, message: { messageId, text } }, timed()),
      classify,
      (added, op) => {
        op.queueItemId = added.queueItemId;
        this.items.push({ threadId, queueItemId: added.queueItemId, messageId, versions: 0, text });
      },
    );
    // An unknown add is retried with the same messageId, as a client would: the same item or none.
  }

  private nextText(item: Item) {
    item.versions++;
    return `${item.messageId} v${item.versions}`;
  }

  private async edit(item: Item): Promise<void> {
    const text = this.nextText(item);
    const commandId = randomBytes(8).toString("hex");
    const op = await this.recorder.record(
      this.base("edit", item.threadId, { queueItemId: item.queueItemId, text, key: commandId }),
      () => this.api.queue.edit.mutate({ threadId: item.threadId, queueItemId: item.queueItemId, text, commandId }, timed()),
      classify,
      (result, op) => {
        op.version = result.version;
        item.text = text;
      },
    );
    this.forgetIfGone(item, op);
  }

  /** Types the item's next text into this client's replica of the thread's document. */
  private async type(item: Item): Promise<void> {
    const replica = this.replica(item.threadId);
    // A user types into the text they see: wait (a little) for the replica to show the last acknowledged one.
    const deadline = Date.now() + 2_000;
    while (Date.now() < deadline && replica.get(item.queueItemId)?.text !== item.text) await sleep(50);
    const entry = replica.get(item.queueItemId);
    if (!entry || entry.text !== item.text || entry.status === "sending") return;
    const text = this.nextText(item);
    const op = await this.recorder.record(
      this.base("type", item.threadId, { queueItemId: item.queueItemId, text }),
      async () => {
        replica.edit(item.queueItemId, text);
        await withTimeout(replica.flush(), CALL_TIMEOUT_MS);
        // The server answers only once refused typing is undone, so the answer is the outcome:
        // the replica shows the typed text if the log holds it, the log's text if it was refused
        // (the item claimed or removed elsewhere first, the text replaced first by the API).
        // An item gone from the replica (sent and done, or removed) tells nothing either way.
        const shown = replica.get(item.queueItemId)?.text;
        if (shown === undefined) throw new Unknown("the item left the queue before the answer");
        if (shown !== text) throw new Error(`typing refused: the replica shows ${JSON.stringify(shown)}`);
      },
      (error) => ({ outcome: error instanceof Unknown ? "unknown" : "fail", error: (error as Error).message }),
      () => {
        item.text = text;
      },
    );
    // Not refused, it may have reached the document before failing.
    if (op.outcome === "fail" && !op.error?.startsWith("typing refused")) item.text = text;
  }

  private async move(item: Item): Promise<void> {
    const others = this.items.filter((i) => i.threadId === item.threadId && i !== item);
    const afterId = others.length > 0 && this.random.next() < 0.7 ? this.random.pick(others).queueItemId : null;
    const commandId = randomBytes(8).toString("hex");
    const op = await this.recorder.record(
      this.base("move", item.threadId, { queueItemId: item.queueItemId, afterId, key: commandId }),
      () => this.api.queue.move.mutate({ threadId: item.threadId, queueItemId: item.queueItemId, afterId, commandId }, timed()),
      classify,
      (result, op) => (op.version = result.version),
    );
    this.forgetIfGone(item, op);
  }

  private async remove(item: Item): Promise<void> {
    const commandId = randomBytes(8).toString("hex");
    const op = await this.recorder.record(
      this.base("remove", item.threadId, { queueItemId: item.queueItemId, key: commandId }),
      () => this.api.queue.remove.mutate({ threadId: item.threadId, queueItemId: item.queueItemId, commandId }, timed()),
      classify,
      (result, op) => (op.version = result.version),
    );
    if (op.outcome === "ok") this.items.splice(this.items.indexOf(item), 1);
    else this.forgetIfGone(item, op);
  }

  private async itemCommand(type: "sendNow" | "retry", item: Item): Promise<void> {
    const commandId = randomBytes(8).toString("hex");
    const op = await this.recorder.record(
      this.base(type, item.threadId, { queueItemId: item.queueItemId, key: commandId }),
      () => this.api.queue[type].mutate({ threadId: item.threadId, queueItemId: item.queueItemId, commandId }, timed()),
      classify,
      (result, op) => (op.version = result.version),
    );
    this.forgetIfGone(item, op);
  }

  private async threadCommand(type: "pause" | "resume", threadId: string): Promise<void> {
    const commandId = randomBytes(8).toString("hex");
    await this.recorder.record(
      this.base(type, threadId, { key: commandId }),
      () => this.api.queue[type].mutate({ threadId, commandId }, timed()),
      classify,
      (result, op) => (op.version = result.version),
    );
  }

  /** An item that left the queue (sent, or removed by a retry of ours) is no longer ours to change. */
  private forgetIfGone(item: Item, op: Op): void {
    if (op.outcome === "fail" && op.error?.includes("NOT_FOUND")) this.items.splice(this.items.indexOf(item), 1);
  }

  async close(): Promise<void> {
    await Promise.all([this.sdk.close(), this.api.close()]);
  }
}

/** An operation whose outcome the client cannot know. */
class Unknown extends Error {}
class TimeoutError extends Unknown {}
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new TimeoutError(`no answer in ${ms} ms`)), ms))),
  ]);
}

/**
 * One run: instances, an agent runtime and clients under one nemesis, then the faults
 * healed, the queues drained and the histories checked against the store.
 */
export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const began = Date.now();
  const say = (line: string) => options.log?.(`[${((Date.now() - began) / 1000).toFixed(1)} s] ${line}`);
  const nemesis: Nemesis = NEMESES[options.nemesis];
  const random = prng(options.seed);
  const recorder = new Recorder();
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-chaos-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const secret = randomBytes(32).toString("hex");
    const auth = createAuth(secret);
    const embedded = nemesis.embedded === true;

    let databaseUrl: string | null = null;
    let pgProxy: BlackholeProxy | null = null;
    let redis: PrivateRedis | null = null;
    let redisProxy: BlackholeProxy | null = null;
    if (embedded) {
      await seedPglite(dataDir);
    } else {
      if (!options.postgres) throw new Error(`${options.nemesis} needs the run's PostgreSQL cluster`);
      const direct = await options.postgres.createDatabase(`chaos_${options.seed}_${randomBytes(4).toString("hex")}`);
      pgProxy = await BlackholeProxy.start({ host: "127.0.0.1", port: options.postgres.port });
      cleanups.push(() => pgProxy!.close());
      databaseUrl = direct.replace(`:${options.postgres.port}/`, `:${pgProxy.port}/`);
      redis = await PrivateRedis.start();
      cleanups.push(() => redis!.kill());
      redisProxy = await BlackholeProxy.start({ host: "127.0.0.1", port: redis.port });
      cleanups.push(() => redisProxy!.close());
    }

    const instanceCount = embedded ? 1 : 3;
    const instances = Array.from({ length: instanceCount }, (_, i) =>
      new Instance(`i${i}`, {
        secret,
        // The embedded database lives in the data directory; instances on PostgreSQL keep only their lock there.
        dataDir: embedded ? dataDir : path.join(dataDir, `i${i}`),
        databaseUrl,
        redisUrl: redisProxy ? `redis://127.0.0.1:${redisProxy.port}` : null,
        dispatchTimeoutMs: DISPATCH_TIMEOUT_MS,
        sweepIntervalMs: SWEEP_MS,
      }),
    );
    cleanups.push(() => Promise.all(instances.map((i) => i.stop())));
    // Together: the migrations run under an advisory lock, so one applies them and the others wait.
    await Promise.all(instances.map((i) => i.start()));
    say(`${options.nemesis} seed ${options.seed}: ${instanceCount} instance(s) serving`);

    const userToken = (sub: string) => auth.issue({ sub, workspaceId: "local", role: "user" });
    const admin = connect(instances[0]!, await userToken("chaos-admin"));
    cleanups.push(() => admin.close());
    // A key names the same thread on every retry; the server answers the id it stored it under.
    const threads: string[] = [];
    for (let t = 0; t < options.threads; t++) threads.push((await surely(() => admin.thread.create.mutate({ threadId: `chaos-t${t}` }, timed()))).threadId);

    const historyFile = path.join(dataDir, "agent.jsonl");
    // The runtime is on the last instance: the one SIGSTOP and SIGKILL nemeses prefer.
    const agentInstance = instances[instances.length - 1]!;
    const agent = new AgentProcess({
      url: agentInstance.url,
      token: await auth.issue({ sub: "chaos-agent", workspaceId: "local", role: "agent" }),
      historyFile,
      workMs: 150,
    });
    agent.start();
    cleanups.push(() => agent.stop());

    const clients = await Promise.all(
      Array.from({ length: options.clients }, async (_, c) =>
        new Client(`c${c}`, instances[c % instances.length]!, await userToken(`c${c}`), threads, recorder, prng(options.seed * 1000 + c), options.typing ?? true),
      ),
    );
    cleanups.push(() => Promise.all(clients.map((c) => c.close())));
    // Every client watches every thread's document on its instance, as the board does.
    for (const c of clients) for (const t of threads) c.replica(t);

    // The workload and the nemesis, at once.
    const targets: Targets = { instances, agent, agentInstance, redis, redisProxy, postgres: options.postgres, pgProxy, recorder, random };
    const until = Date.now() + options.workloadMs;
    let striking = true;
    const working = clients.map(async (client) => {
      while (Date.now() < until || striking) {
        await client.step();
        await sleep(random.between(20, 120));
      }
    });
    const strikes = (async () => {
      await sleep(random.between(500, 1_500));
      for (let strikes = 0; Date.now() < until - 1_000 || strikes < (options.minStrikes ?? 1); strikes++) {
        await nemesis.strike(targets);
        await sleep(random.between(500, 2_000));
      }
    })().finally(() => (striking = false));
    await Promise.all([...working, strikes]);
    await nemesis.heal(targets);
    recorder.strike("healed");
    say(`${options.nemesis} seed ${options.seed}: workload done, ${recorder.ops.length} operations`);

    // Documents: every replica (each client's, and a fresh one per instance) must come to
    // equal the log once the faults healed. The queues are held meanwhile, so items stay.
    for (const threadId of threads) await surely(() => admin.queue.pause.mutate({ threadId }, timed()));
    const documents: RunHistory["documents"] = [];
    const fresh = await Promise.all(instances.map(async (instance) => ({ instance, sdk: createTurnqueueClient({ url: instance.url, token: await userToken("checker") }) })));
    cleanups.push(() => Promise.all(fresh.map((f) => f.sdk.close())));
    for (const threadId of threads) {
      const replicas: [string, ThreadQueue][] = [
        ...fresh.map((f): [string, ThreadQueue] => [`${f.instance.name} (fresh client)`, f.sdk.openThreadQueue(threadId)]),
        ...clients.flatMap((c) => c.openReplicas.filter(([t]) => t === threadId).map(([, q]): [string, ThreadQueue] => [`${c.name}'s replica`, q])),
      ];
      let latest: { name: string; view: DocSummary; expected: DocSummary }[] = [];
      const deadline = Date.now() + 20_000;
      for (;;) {
        const snapshot = await surely(() => admin.thread.get.query({ threadId }, timed()));
        const expected = summaryOfSnapshot(snapshot);
        latest = replicas.map(([name, q]) => ({ name, view: summaryOfReplica(q), expected }));
        if (latest.every((l) => JSON.stringify(l.view) === JSON.stringify(l.expected)) || Date.now() > deadline) break;
        await sleep(250);
      }
      for (const l of latest) documents.push({ instance: l.name, threadId, view: l.view as never, expected: l.expected as never });
    }
    say(`${options.nemesis} seed ${options.seed}: documents compared`);

    // Drain: resume every queue and retry what failed, until every queue is empty and idle.
    const drainDeadline = Date.now() + 90_000;
    for (;;) {
      let busy = 0;
      for (const threadId of threads) {
        const s = await surely(() => admin.thread.get.query({ threadId }, timed()));
        if (s.queue.paused) await surely(() => admin.queue.resume.mutate({ threadId }, timed())).catch(() => {});
        for (const i of s.queue.items) if (i.status === "failed") await surely(() => admin.queue.retry.mutate({ threadId, queueItemId: i.queueItemId }, timed())).catch(() => {});
        if (s.queue.items.length > 0 || s.session.activeTurnId !== null) busy++;
      }
      if (busy === 0 || Date.now() > drainDeadline) break;
      await sleep(500);
    }
    say(`${options.nemesis} seed ${options.seed}: drained`);
    await agent.stop();
    await Promise.all([...fresh.map((f) => f.sdk.close()), ...clients.map((c) => c.close())]);
    await Promise.all(instances.map((i) => i.stop()));

    // The truth: each thread's log, and the projections against a rebuild from it.
    const db = await openDatabase({ databaseUrl, dataDir });
    const log = new Map<string, StoredEvent[]>();
    let projections: RunHistory["projections"];
    try {
      for (const threadId of threads) log.set(threadId, await db.store.readThread(threadId, 0));
      const live = await projectionRows(db);
      await rebuildProjections(db);
      projections = { live, rebuilt: await projectionRows(db) };
    } finally {
      await db.store.close();
      await db.close();
    }
    const agentRecords: AgentRecord[] = existsSync(historyFile)
      ? readFileSync(historyFile, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as AgentRecord)
      : [];
    const violations = check({ ops: recorder.ops, agent: agentRecords, nemesis: recorder.nemesis, log, projections, documents });
    return {
      nemesis: options.nemesis,
      seed: options.seed,
      operations: recorder.ops.length,
      acknowledged: recorder.ops.filter((o) => o.outcome === "ok").length,
      typed: recorder.ops.filter((o) => o.type === "type" && o.outcome === "ok").length,
      unknown: recorder.ops.filter((o) => o.outcome === "unknown").length,
      violations,
      faults: recorder.nemesis.map((n) => n.what),
      debug: recorder.ops.filter((o) => o.outcome !== "ok"),
      logs: { ...Object.fromEntries(instances.map((i) => [i.name, i.log()])), agent: agent.log() },
    };
  } finally {
    await cleanup();
  }
}

/** What a document and the log must agree on: queue order, each item's text and status, the hold. */
interface DocSummary {
  paused: boolean;
  items: { id: string; text: string; status: string; position: string }[];
}

function summaryOfReplica(q: ThreadQueue): DocSummary {
  return { paused: q.state.paused, items: q.entries.map((e) => ({ id: e.id, text: e.text, status: e.status, position: e.position })) };
}

function summaryOfSnapshot(s: { queue: { paused: boolean; items: { queueItemId: string; text: string; status: string; position: string }[] } }): DocSummary {
  return { paused: s.queue.paused, items: s.queue.items.map((i) => ({ id: i.queueItemId, text: i.text, status: i.status, position: i.position })) };
}
