import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";

const root = path.resolve(import.meta.dirname, "../..");

/** `turnqueue serve` as a child process: one node process (no wrapper), so SIGKILL kills the server itself. */
export class ServerProcess {
  private child: ChildProcess | null = null;
  url = "";

  constructor(
    private readonly dataDir: string,
    private readonly secret: string,
    private readonly databaseUrl: string | null,
    /** More `serve` flags, e.g. limits. */
    private readonly flags: string[] = [],
  ) {}

  async start(port = 0): Promise<string> {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", "serve", "--port", String(port), "--data-dir", this.dataDir,
        "--secret", this.secret, "--log-level", "warn", "--sweep-interval-ms", "2000", ...this.flags],
      {
        cwd: root,
        stdio: ["ignore", "pipe", "inherit"],
        env: this.env(),
      },
    );
    this.child = child;
    const lines = createInterface({ input: child.stdout! });
    this.url = await new Promise<string>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`turnqueue serve exited with ${code} before serving`)));
      lines.on("line", (line) => {
        const match = /Turnqueue is serving (\S+)/.exec(line);
        if (match) resolve(match[1]);
      });
    });
    return this.url;
  }

  /** The embedded default unless told otherwise: nothing of the test runner's environment leaks in. */
  private env(): NodeJS.ProcessEnv {
    const { DATABASE_URL: _db, REDIS_URL: _redis, ...env } = process.env;
    return this.databaseUrl ? { ...env, DATABASE_URL: this.databaseUrl } : env;
  }

  kill(): Promise<void> {
    const child = this.child!;
    this.child = null;
    return new Promise((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
  }

  stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  }
}
