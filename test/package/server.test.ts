import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkoutCopy, pack, runOnce, tempDir } from "./harness.js";

interface Served {
  url: string;
  token: string;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the installed command's `serve` and reads the URL and token it prints. */
function serve(bin: string, dataDir: string, env: NodeJS.ProcessEnv): Promise<Served> {
  const child = spawn(bin, ["serve", "--port", "0", "--data-dir", dataDir], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    child.stderr.on("data", (chunk) => (err += chunk));
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const url = /serving (http:\/\/\S+)/.exec(out)?.[1];
      const token = /user token \(workspace "local"[^)]*\): (\S+)/.exec(out)?.[1];
      if (url && token) {
        resolve({
          url,
          token,
          stop: () => {
            child.kill("SIGTERM");
            return exited;
          },
        });
      }
    });
    void exited.then(({ code, signal }) => reject(new Error(`serve exited (${code ?? signal}) before it was ready\n${out}\n${err}`)));
  });
}

/** No developer TURNQUEUE_* or database settings leak into the installed command. */
const cleanEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TURNQUEUE_") && k !== "DATABASE_URL" && k !== "REDIS_URL")),
  TURNQUEUE_LOG_LEVEL: "warn",
  ...extra,
});

// Slow (npm pack runs the whole build; the global install fetches the server's dependencies
// from the npm cache): one pack of each package and one install for every test here. This is
// the package check `npm test` runs; the SDK's own suite (a fresh app compiling and running
// the README's examples) is test/package/sdk.slow.test.ts, in `npm run test:package`.
describe("the server from npm pack, installed globally (npm install -g, slow), with the packed SDK beside it", { timeout: 300_000 }, () => {
  let files: string[];
  let prefix: string;
  let bin: string;
  let temp: { dir: string; remove: () => Promise<void> };

  beforeAll(async () => {
    temp = await tempDir("turnqueue-server-");
    const checkout = await checkoutCopy(temp.dir);
    const packed = await pack(checkout, temp.dir);
    const sdk = await pack(path.join(checkout, "packages/sdk"), temp.dir);
    files = packed.files;
    prefix = path.join(temp.dir, "prefix");
    const installed = await runOnce(
      "npm",
      ["install", "-g", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", packed.tarball, sdk.tarball],
      { cwd: temp.dir },
    );
    if (installed.code !== 0) throw new Error(`npm install -g failed:\n${installed.stdout}\n${installed.stderr}`);
    bin = path.join(prefix, "bin", "turnqueue");
  }, 900_000);
  afterAll(async () => {
    await temp?.remove();
  });

  it("ships what runs and no more: compiled JavaScript, the web board, the migrations, the bin", () => {
    expect(files).toContain("bin/turnqueue.mjs");
    expect(files).toContain("dist/src/cli.js");
    expect(files).toContain("dist/client/web/dist/index.html");
    expect(files.some((f) => /^dist\/prisma\/migrations\/[^/]+\/migration\.sql$/.test(f))).toBe(true);
    const unexpected = files.filter(
      (f) =>
        !/^(package\.json|README\.md|bin\/turnqueue\.mjs)$/.test(f) &&
        !/^dist\/(src|client)\/.+\.js$/.test(f) &&
        !/^dist\/client\/web\/dist\/.+\.(html|js|css)$/.test(f) &&
        !/^dist\/prisma\/migrations\/(migration_lock\.toml|[^/]+\/migration\.sql)$/.test(f),
    );
    expect(unexpected).toEqual([]);
  });

  it("installs without development tools: no tsx, vite, prisma CLI or vitest", async () => {
    const installed = path.join(prefix, "lib/node_modules/turnqueue");
    expect(existsSync(path.join(installed, "dist/src/cli.js"))).toBe(true);
    // (typescript itself does come: @trpc/server and @trpc/client declare it a peer dependency.)
    for (const tool of ["tsx", "vite", "prisma", "vitest"]) {
      expect(existsSync(path.join(installed, "node_modules", tool)), tool).toBe(false);
    }
  });

  it("`turnqueue serve` from the global install serves the API and the web board on the embedded database (the packed SDK talks to it), and stops on SIGTERM", async () => {
    const dataDir = path.join(temp.dir, "data");
    const env = cleanEnv({ PATH: `${path.join(prefix, "bin")}:${process.env.PATH}` });
    const server = await serve(bin, dataDir, env);
    let stopped = false;
    try {
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      const page = await fetch(server.url);
      expect(await page.text()).toContain("<!doctype html>");
      const created = await fetch(`${server.url}/trpc/thread.create`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${server.token}` },
        body: JSON.stringify({ title: "installed" }),
      });
      expect(created.status).toBe(200);

      // `token` signs with the same secret (the data dir's), so its token works too.
      const token = await runOnce(bin, ["token", "--data-dir", dataDir, "--workspace", "local", "--role", "user"], { cwd: temp.dir, env });
      expect(token.code, token.stderr).toBe(0);
      const listed = await fetch(`${server.url}/trpc/thread.list`, { headers: { authorization: `Bearer ${token.stdout.trim()}` } });
      expect(((await listed.json()) as { result: { data: { items: { title: string }[] } } }).result.data.items.map((t) => t.title)).toEqual(["installed"]);

      // The packed SDK, installed beside it, imports with its own dependencies and talks to it.
      const script = path.join(prefix, "lib", "sdk-check.mjs");
      await writeFile(
        script,
        [
          'import { createTurnqueueClient } from "@turnqueue/sdk";',
          'import { runAgent } from "@turnqueue/sdk/agent";',
          "const client = createTurnqueueClient({ url: process.env.TURNQUEUE_URL, token: process.env.TURNQUEUE_TOKEN });",
          "const { items } = await client.thread.list.query();",
          "await client.close();",
          'console.log(JSON.stringify({ titles: items.map((t) => t.title), runAgent: typeof runAgent }));',
          "",
        ].join("\n"),
      );
      const sdkRun = await runOnce(process.execPath, [script], { cwd: temp.dir, env: { ...env, TURNQUEUE_URL: server.url, TURNQUEUE_TOKEN: server.token } });
      expect(sdkRun.code, sdkRun.stderr).toBe(0);
      expect(JSON.parse(sdkRun.stdout)).toEqual({ titles: ["installed"], runAgent: "function" });

      expect(await server.stop()).toEqual({ code: 0, signal: null });
      stopped = true;
    } finally {
      if (!stopped) await server.stop();
    }
  });
});
