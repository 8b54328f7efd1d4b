import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chmod, chown, mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import pg from "pg";
import { until } from "../support/poll.js";
import { freePort } from "../support/private-redis.js";

/**
 * The parts a nemesis may hurt, every one private to the run: a Redis and a PostgreSQL
 * cluster of its own (the machine's shared servers are never touched), TCP proxies it can
 * black-hole, and Turnqueue instances and agent runtimes as child processes it can
 * SIGKILL, SIGSTOP and SIGCONT.
 */

const root = path.resolve(import.meta.dirname, "../..");
const run = promisify(execFile);

const waitExit = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => child.once("exit", () => resolve()));

/** The PostgreSQL binaries of the Debian package (initdb, pg_ctl), newest version first. */
function postgresBin(): string {
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(path.join(base, v, "bin", "initdb"))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error(`no PostgreSQL server binaries under ${base} (Debian's postgresql package)`);
  return path.join(base, versions[0], "bin");
}

/**
 * A PostgreSQL cluster of the run's own in a temporary directory, which a nemesis may
 * restart. initdb refuses to run as root, so as root it runs as the `postgres` user.
 */
export class PrivatePostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
  ) {}

  url(database = "postgres") {
    return `postgresql://postgres@127.0.0.1:${this.port}/${database}`;
  }

  static async start(): Promise<PrivatePostgres> {
    const bin = postgresBin();
    const dir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-chaos-pg-"));
    const pgdata = path.join(dir, "data");
    const cluster = new PrivatePostgres(dir, await freePort(), bin);
    if (process.getuid?.() === 0) {
      const { stdout } = await run("id", ["-u", "postgres"]);
      const { stdout: gid } = await run("id", ["-g", "postgres"]);
      await chown(dir, Number(stdout), Number(gid));
      await chmod(dir, 0o700);
    }
    await cluster.as([path.join(bin, "initdb"), "-D", pgdata, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
    await cluster.start();
    return cluster;
  }

  /** Runs a PostgreSQL binary as its owner (the `postgres` user when we are root). */
  private async as(command: string[]): Promise<void> {
    const [file, ...args] = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", ...command] : command;
    await run(file!, args, { cwd: this.dir });
  }

  private get pgdata() {
    return path.join(this.dir, "data");
  }

  async start(): Promise<void> {
    const options = `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.dir} -F -c max_connections=200`;
    await this.as([path.join(this.bin, "pg_ctl"), "-D", this.pgdata, "-o", options, "-l", path.join(this.dir, "log"), "-w", "start"]);
  }

  /** Immediate shutdown (what a crash looks like to clients: every connection dropped), then start again after `downMs`. */
  async restart(downMs: number): Promise<void> {
    await this.as([path.join(this.bin, "pg_ctl"), "-D", this.pgdata, "-m", "immediate", "-w", "stop"]);
    await new Promise((r) => setTimeout(r, downMs));
    await this.start();
  }

  async createDatabase(name: string): Promise<string> {
    const client = new pg.Client({ connectionString: this.url() });
    await client.connect();
    try {
      await client.query(`create database ${name}`);
    } finally {
      await client.end();
    }
    return this.url(name);
  }

  async close(): Promise<void> {
    await this.as([path.join(this.bin, "pg_ctl"), "-D", this.pgdata, "-m", "immediate", "-w", "stop"]).catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * A TCP relay the nemesis controls. `blackhole()` makes the link half-open: connections
 * stay established but no byte moves either way and new ones get no answer, as when a
 * network path drops packets; `release()` delivers what was held (TCP's retransmissions
 * arriving once the path heals) and forwards again.
 */
export class BlackholeProxy {
  private readonly links = new Set<Link>();
  private holes = false;
  private readonly server: net.Server;
  port = 0;

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(target: { host: string; port: number }): Promise<BlackholeProxy> {
    const proxy = new BlackholeProxy(target);
    await new Promise<void>((resolve, reject) => proxy.server.once("error", reject).listen(0, "127.0.0.1", () => resolve()));
    proxy.port = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  private accept(client: net.Socket): void {
    const link: Link = { client, upstream: null, toUpstream: [], toClient: [] };
    this.links.add(link);
    client.on("error", () => client.destroy());
    client.on("data", (chunk: Buffer) => (this.holes || !link.upstream ? link.toUpstream.push(chunk) : link.upstream.write(chunk)));
    client.once("close", () => {
      link.upstream?.destroy();
      this.links.delete(link);
    });
    if (!this.holes) this.connect(link);
  }

  private connect(link: Link): void {
    const upstream = net.connect(this.target.port, this.target.host);
    link.upstream = upstream;
    upstream.on("error", () => upstream.destroy());
    upstream.once("close", () => link.client.destroy());
    upstream.on("data", (chunk: Buffer) => (this.holes ? link.toClient.push(chunk) : link.client.write(chunk)));
    for (const chunk of link.toUpstream.splice(0)) upstream.write(chunk);
  }

  blackhole(): void {
    this.holes = true;
  }

  release(): void {
    this.holes = false;
    for (const link of this.links) {
      if (!link.upstream) this.connect(link);
      for (const chunk of link.toUpstream.splice(0)) link.upstream!.write(chunk);
      for (const chunk of link.toClient.splice(0)) link.client.write(chunk);
    }
  }

  async close(): Promise<void> {
    for (const link of this.links) {
      link.client.destroy();
      link.upstream?.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

interface Link {
  client: net.Socket;
  upstream: net.Socket | null;
  /** Bytes held while the link is black-holed, delivered in order on release. */
  toUpstream: Buffer[];
  toClient: Buffer[];
}

/** A child process run from the sources through tsx's loader in the one node process, so signals reach it. */
function spawnTs(script: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"], env });
}

/** Nothing of the test runner's environment decides where an instance keeps its data. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("TURNQUEUE_") && k !== "DATABASE_URL" && k !== "REDIS_URL"),
  );
  return { ...env, ...extra };
}

export interface InstanceOptions {
  secret: string;
  /** PostgreSQL (several instances) or, without it, the embedded PGlite in `dataDir`. */
  databaseUrl: string | null;
  redisUrl: string | null;
  dataDir: string;
  dispatchTimeoutMs: number;
  sweepIntervalMs: number;
}

/** How much of an instance's last output is kept for a failure's report (its warnings, a crash). */
const LOG_TAIL = 200_000;

/** `turnqueue serve` as a child process on a fixed port, so clients reconnect to it after a restart. */
export class Instance {
  private child: ChildProcess | null = null;
  private stderr = "";
  port = 0;
  stopped = false;

  constructor(
    readonly name: string,
    private readonly options: InstanceOptions,
  ) {}

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get alive() {
    return this.child !== null;
  }

  async start(): Promise<void> {
    this.port ||= await freePort();
    const o = this.options;
    const args = [
      "serve", "--port", String(this.port), "--data-dir", o.dataDir, "--secret", o.secret, "--log-level", "warn",
      "--sweep-interval-ms", String(o.sweepIntervalMs), "--dispatch-timeout-ms", String(o.dispatchTimeoutMs),
      "--doc-idle-ms", "600000",
      ...(o.databaseUrl ? ["--database-url", o.databaseUrl] : []),
      ...(o.redisUrl ? ["--redis-url", o.redisUrl] : []),
    ];
    const child = spawnTs("src/cli.ts", args, childEnv({ NODE_OPTIONS: "--max-old-space-size=512" }));
    this.child = child;
    this.stopped = false;
    child.stderr!.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-LOG_TAIL);
    });
    await new Promise<void>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`${this.name} exited (${code}) before serving:\n${this.stderr}`));
      child.once("exit", onExit);
      createInterface({ input: child.stdout! }).on("line", (line) => {
        this.stderr = (this.stderr + line + "\n").slice(-LOG_TAIL);
        if (/serving http/.test(line)) {
          child.off("exit", onExit);
          resolve();
        }
      });
    });
    // An instance no nemesis stopped must never exit: when one does, the run says why.
    child.once("exit", (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      console.error(`\n${this.name} EXITED by itself (${signal ?? `code ${code}`}); its last output:\n${this.stderr.slice(-6_000)}`);
    });
  }

  /** The last lines the instance wrote (its warnings), for a failure's report. */
  log(): string {
    return this.stderr;
  }

  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child) return;
    child.kill("SIGKILL");
    await waitExit(child);
  }

  pause(): void {
    this.child?.kill("SIGSTOP");
    this.stopped = true;
  }

  resume(): void {
    this.child?.kill("SIGCONT");
    this.stopped = false;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child) return;
    child.kill("SIGCONT");
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await waitExit(child);
    clearTimeout(killer);
  }
}

/** The agent runtime (test/chaos/agent-runtime.ts, on the SDK's runAgent) as a child process that a nemesis may SIGKILL. */
export class AgentProcess {
  private child: ChildProcess | null = null;
  private incarnation = 0;
  private stderr = "";

  constructor(private readonly options: { url: string; token: string; historyFile: string; workMs: number }) {}

  start(): void {
    this.incarnation++;
    const child = spawnTs("test/chaos/agent-runtime.ts", [], childEnv({
      CHAOS_URL: this.options.url,
      CHAOS_TOKEN: this.options.token,
      CHAOS_HISTORY: this.options.historyFile,
      CHAOS_INCARNATION: String(this.incarnation),
      CHAOS_WORK_MS: String(this.options.workMs),
    }));
    child.stdout!.resume();
    child.stderr!.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-10_000);
    });
    this.child = child;
  }

  log(): string {
    return this.stderr;
  }

  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child) return;
    child.kill("SIGKILL");
    await waitExit(child);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child) return;
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await waitExit(child);
    clearTimeout(killer);
  }
}
