import { spawn } from "node:child_process";
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { readmeBlocks } from "../support/readme.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { checkoutCopy, freshApp, installedVersion, pack, repoRoot, runOnce, tempDir } from "./harness.js";

const tsc = path.join(repoRoot, "node_modules/typescript/bin/tsc");
const consumerSource = new URL("./fixtures/consumer.source", import.meta.url);

/** The ```ts blocks of README.md's "Use it from your app" section, in order. */
const readmeExamples = () => readmeBlocks("Use it from your app", "ts");

/** A consumer's own tsconfig: strict, the compiler's default target, its own node_modules only. */
const consumerTsconfig = {
  compilerOptions: { strict: true, module: "nodenext", moduleResolution: "nodenext", outDir: "out", types: ["node"] },
  files: ["consumer.ts"],
};

// Slow (npm pack builds the SDK, npm install into a fresh app): one pack for every test here.
describe("@turnqueue/sdk from npm pack, installed into a fresh app (slow)", { timeout: 300_000 }, () => {
  let server: TestServer;
  let app: string;
  let files: string[];
  let removeTemp: () => Promise<void>;
  let env: NodeJS.ProcessEnv;
  let sdkDir: string;

  beforeAll(async () => {
    const temp = await tempDir("turnqueue-sdk-");
    removeTemp = temp.remove;
    const checkout = await checkoutCopy(temp.dir);
    sdkDir = path.join(checkout, "packages/sdk");
    const packed = await pack(sdkDir, temp.dir);
    files = packed.files;
    app = await freshApp(path.join(temp.dir, "app"), [packed.tarball, `@types/node@${await installedVersion("@types/node")}`]);
    server = await startTestServer();
    env = {
      ...process.env,
      TURNQUEUE_URL: server.url,
      TURNQUEUE_TOKEN: await server.token("user", "fresh-app"),
      TURNQUEUE_AGENT_TOKEN: await server.token("agent", "fresh-app"),
    };
  }, 600_000);
  afterAll(async () => {
    await server?.close();
    await removeTemp?.();
  });

  it("ships built JavaScript and declarations only: no sources, tests or server code", () => {
    expect(files).toContain("dist/index.js");
    expect(files).toContain("dist/index.d.ts");
    expect(files).toContain("dist/agent.js");
    expect(files).toContain("dist/agent.d.ts");
    expect(files.filter((f) => !/^(package\.json|dist\/.+\.(js|d\.ts))$/.test(f))).toEqual([]);
  });

  it("declares every package its built code imports, with the server's version ranges", async () => {
    const manifest = JSON.parse(await readFile(path.join(sdkDir, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    const root = JSON.parse(await readFile(path.join(repoRoot, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    const imported = new Set<string>();
    for (const file of files.filter((f) => f.endsWith(".js") || f.endsWith(".d.ts"))) {
      const text = await readFile(path.join(app, "node_modules/@turnqueue/sdk", file), "utf8");
      for (const [, spec] of text.matchAll(/(?:from\s*|import\(\s*)"([^".][^"]*)"/g)) {
        if (!spec.startsWith("node:")) imported.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]);
      }
    }
    expect([...imported].sort()).toEqual(Object.keys(manifest.dependencies).sort());
    for (const [name, range] of Object.entries(manifest.dependencies)) expect(range, name).toBe(root.dependencies[name]);
  });

  it("a plain-JavaScript ESM consumer run by node creates a thread, arranges the live queue and an agent runs it to completion", async () => {
    await cp(consumerSource, path.join(app, "consumer.mjs"));
    const ran = await runOnce(process.execPath, ["consumer.mjs"], { cwd: app, env });
    expect(ran.code, ran.stderr).toBe(0);
    expect(JSON.parse(ran.stdout).ran).toEqual(["fix the lint errors", "run the tests, then push"]);
  });

  it("a TypeScript consumer compiles with tsc (strict, default target, library checks on) and does the same", async () => {
    await cp(consumerSource, path.join(app, "consumer.ts"));
    await writeFile(path.join(app, "tsconfig.json"), JSON.stringify(consumerTsconfig, null, 2));
    const compiled = await runOnce(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: app });
    expect(compiled.code, compiled.stdout).toBe(0);
    const ran = await runOnce(process.execPath, ["out/consumer.js"], { cwd: app, env });
    expect(ran.code, ran.stderr).toBe(0);
    expect(JSON.parse(ran.stdout).ran).toEqual(["fix the lint errors", "run the tests, then push"]);
  });

  it('README "Use it from your app": both examples compile as written (strict) and the agent receives the arranged queue in order', async () => {
    const [user, agentSide, ...rest] = await readmeExamples();
    expect(rest).toEqual([]);
    expect(user).toContain('from "@turnqueue/sdk"');
    expect(agentSide).toContain('from "@turnqueue/sdk/agent"');
    const dir = path.join(app, "readme");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "user.ts"), user);
    await writeFile(path.join(dir, "agent.ts"), agentSide);
    await writeFile(path.join(dir, "tsconfig.json"), JSON.stringify({ ...consumerTsconfig, files: ["user.ts", "agent.ts"] }, null, 2));
    const compiled = await runOnce(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: dir });
    expect(compiled.code, compiled.stdout).toBe(0);

    const readmeEnv = {
      ...env,
      TURNQUEUE_TOKEN: await server.token("user", "readme", "reader"),
      TURNQUEUE_AGENT_TOKEN: await server.token("agent", "readme", "runtime"),
    };
    let agentOutput = "";
    const agent = spawn(process.execPath, ["out/agent.js"], { cwd: dir, env: readmeEnv, stdio: ["ignore", "pipe", "pipe"] });
    agent.stdout.on("data", (chunk) => (agentOutput += chunk));
    agent.stderr.on("data", (chunk) => (agentOutput += chunk));
    const agentExited = new Promise<number | null>((resolve) => agent.once("exit", (code) => resolve(code)));
    try {
      const userRun = await runOnce(process.execPath, ["out/user.js"], { cwd: dir, env: readmeEnv });
      expect(userRun.code, userRun.stderr).toBe(0);
      // The user's device saw its arrangement live: moved first, edited text.
      expect(userRun.stdout.replace(/\s+/g, " ")).toContain("'pending: Fix the lint errors', 'pending: Run the tests, then push'");
      await vi.waitFor(() => expect(agentOutput).toMatch(/turn .+: Run the tests, then push/), { timeout: 60_000, interval: 50 });
      const turns = agentOutput.split("\n").filter((line) => line.startsWith("turn "));
      expect(turns.map((line) => line.replace(/^turn [^:]+: /, ""))).toEqual(["Fix the lint errors", "Run the tests, then push"]);
    } finally {
      agent.kill("SIGTERM");
    }
    expect(await agentExited, agentOutput).toBe(0);
  });

  it("a wrong input fails to compile, naming the procedure's input type", async () => {
    const dir = path.join(app, "wrong");
    await mkdir(dir, { recursive: true });
    await writeFile(
      path.join(dir, "consumer.ts"),
      [
        'import { createTurnqueueClient } from "@turnqueue/sdk";',
        'const client = createTurnqueueClient({ url: "http://127.0.0.1:1", token: "t" });',
        "await client.thread.create.mutate({ title: 42 });",
        'await client.queue.move.mutate({ threadId: "t", queueItemId: "q", afterId: 7 });',
        "",
      ].join("\n"),
    );
    await writeFile(path.join(dir, "tsconfig.json"), JSON.stringify(consumerTsconfig, null, 2));
    const compiled = await runOnce(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: dir });
    expect(compiled.code).not.toBe(0);
    expect(compiled.stdout).toMatch(/consumer\.ts\(3,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/);
    expect(compiled.stdout).toMatch(/consumer\.ts\(4,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/);
  });

  it("a browser build (Vite) of an app using the SDK pulls in no Node module", async () => {
    const web = path.join(app, "web");
    await mkdir(web, { recursive: true });
    await writeFile(path.join(web, "index.html"), '<!doctype html><script type="module" src="./main.js"></script>');
    await writeFile(
      path.join(web, "main.js"),
      'import { createTurnqueueClient } from "@turnqueue/sdk";\nwindow.turnqueue = createTurnqueueClient({ url: location.origin, token: "t" });\n',
    );
    const { build, createLogger } = await import("vite");
    const warnings: string[] = [];
    const logger = createLogger("warn", { allowClearScreen: false });
    logger.warn = (message) => void warnings.push(message);
    logger.warnOnce = (message) => void warnings.push(message);
    const result = await build({ root: web, logLevel: "warn", customLogger: logger, build: { write: false }, configFile: false });
    const outputs = (Array.isArray(result) ? result : [result]).flatMap((r) => ("output" in r ? r.output : []));
    const code = outputs.map((o) => ("code" in o ? o.code : "")).join("\n");
    expect(code).toContain("/trpc"); // the SDK is in the bundle
    expect(warnings.filter((w) => /externalized for browser compatibility|node:/.test(w))).toEqual([]);
    expect(code).not.toMatch(/from\s*["']node:|require\(["']node:/);
  });
});
