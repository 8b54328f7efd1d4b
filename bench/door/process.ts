import { spawn, type ChildProcess } from "node:child_process";
import { WebSocket } from "ws";

/**
 * A server under measurement, in its own process: `turnqueue serve` or a peer's server.
 * It runs with the inspector on a loopback port, which costs nothing until used and lets the
 * bench collect garbage and read the heap there (memory per loaded document).
 */
export interface ServerProcess {
  url: string;
  pid: number;
  /** The server's used heap after a full garbage collection, in bytes. */
  heapUsed(): Promise<number>;
  /** SIGTERM, then wait for the exit (a --cpu-prof profile is written then). */
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /** Node arguments and the script with its own arguments. */
  args: string[];
  env?: Record<string, string | undefined>;
  /** The line of stdout that says where it serves; group 1 is the URL. */
  ready: RegExp;
  /** Directory for a `--cpu-prof` profile of the whole run, when profiling. */
  cpuProfDir?: string | null;
  label: string;
}

export async function spawnServer(options: SpawnOptions): Promise<ServerProcess> {
  const profile = options.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`] : [];
  const child = spawn(process.execPath, ["--inspect=127.0.0.1:0", ...profile, ...options.args], {
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let stderr = "";
  const [url, inspectorUrl] = await Promise.all([
    lineMatching(child, "stdout", options.ready, exited, () => stderr),
    lineMatching(child, "stderr", /Debugger listening on (ws:\/\/\S+)/, exited, () => stderr),
  ]);
  child.stderr!.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
    if (process.env.BENCH_VERBOSE) process.stderr.write(`[${options.label}] ${d}`);
  });
  const inspector = await Inspector.open(inspectorUrl);
  return {
    url,
    pid: child.pid!,
    async heapUsed() {
      for (let i = 0; i < 3; i++) await inspector.call("HeapProfiler.collectGarbage");
      const { usedSize } = (await inspector.call("Runtime.getHeapUsage")) as { usedSize: number };
      return usedSize;
    },
    async stop() {
      inspector.close();
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function lineMatching(child: ChildProcess, stream: "stdout" | "stderr", pattern: RegExp, exited: Promise<unknown>, log: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    const onData = (d: Buffer) => {
      buffer += d.toString();
      if (stream === "stderr" && process.env.BENCH_VERBOSE) process.stderr.write(d);
      const match = pattern.exec(buffer);
      if (match) {
        child[stream]!.off("data", onData);
        resolve(match[1]!);
      }
    };
    child[stream]!.on("data", onData);
    void exited.then((code) => reject(new Error(`server exited (${code}) before it was ready: ${buffer.slice(-2000)} ${log()}`)));
  });
}

/** Just enough of the Chrome DevTools protocol to call a method and await its answer. */
class Inspector {
  private next = 1;
  private readonly waiting = new Map<number, (result: unknown) => void>();
  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { id?: number; result?: unknown };
      if (message.id !== undefined) this.waiting.get(message.id)?.(message.result);
    });
  }

  static open(url: string): Promise<Inspector> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once("open", () => resolve(new Inspector(ws)));
      ws.once("error", reject);
    });
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.ws.close();
  }
}
