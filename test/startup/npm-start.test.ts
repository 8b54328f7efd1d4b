import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect, it, vi } from "vitest";
import { until } from "../support/poll.js";
import { LOCK_FILE } from "../../src/startup/data-dir-lock.js";
import { seedPglite } from "../support/server.js";
import { cleanEnv, run } from "../server/process.js";

vi.setConfig({ testTimeout: 240_000 });

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it("npm start under a supervisor: SIGTERM to the npm process (only) stops the server too", async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-npm-start-"));
  await seedPglite(dataDir);
  // A supervisor signals the process it started, not a process group.
  const npm = run("npm", ["start", "--", "--port", "0"], { env: cleanEnv({ TURNQUEUE_DATA_DIR: dataDir, TURNQUEUE_LOG_LEVEL: "info" }) });
  let serverPid = 0;
  try {
    const [, url] = await npm.waitFor(/serving (http:\/\/\S+)/);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    // The lock names the process that serves: the one that must not outlive npm.
    serverPid = (JSON.parse(await readFile(path.join(dataDir, LOCK_FILE), "utf8")) as { pid: number }).pid;
    expect(serverPid).not.toBe(npm.child.pid);
    npm.child.kill("SIGTERM");
    await npm.exited;
    await until(() => !alive(serverPid), () => `server pid ${serverPid} still alive`, 60_000);
    // It stopped gracefully: the lock is released, not left stale.
    await expect(readFile(path.join(dataDir, LOCK_FILE))).rejects.toThrow(/ENOENT/);
  } finally {
    if (serverPid && alive(serverPid)) process.kill(serverPid, "SIGKILL");
    await rm(dataDir, { recursive: true, force: true });
  }
});
