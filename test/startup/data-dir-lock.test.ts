import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { LOCK_FILE } from "../../src/startup/data-dir-lock.js";
import { ExitCode } from "../../src/exit-codes.js";
import { seedPglite } from "../support/server.js";
import { serve, turnqueueOnce } from "../server/process.js";
import { connect } from "../support/clients.js";

// Real server processes, one of them killed: limits, not measurements.
vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

const holderOf = async (dataDir: string) => JSON.parse(await readFile(path.join(dataDir, LOCK_FILE), "utf8")) as { pid: number };

describe("the embedded database's data directory is locked to one server", () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-lock-"));
    await seedPglite(dataDir);
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("refuses a second server naming the first one's pid; after the first is SIGKILLed, its stale lock is taken over and the data is intact", async () => {
    const first = await serve(["--data-dir", dataDir]);
    let threadId: string;
    try {
      expect(await holderOf(dataDir)).toMatchObject({ pid: first.child.pid });
      ({ threadId } = await connect(first, first.token).thread.create.mutate({ title: "before the crash" }));

      const second = await turnqueueOnce(["serve", "--port", "0", "--data-dir", dataDir]);
      expect(second.code).toBe(ExitCode.dataDirLocked);
      expect(second.stdout).toBe("");
      expect(second.stderr).toBe(
        `turnqueue: the data directory ${dataDir} is in use by another turnqueue server (pid ${first.child.pid}): stop that one first, ` +
          "or give this one its own --data-dir / TURNQUEUE_DATA_DIR (for several servers on one database use DATABASE_URL)\n",
      );
    } finally {
      first.child.kill("SIGKILL");
      await first.exited;
    }
    // A crash leaves its lock behind, naming a process that no longer exists.
    expect(await holderOf(dataDir)).toMatchObject({ pid: first.child.pid });

    const third = await serve(["--data-dir", dataDir]);
    try {
      expect(await holderOf(dataDir)).toMatchObject({ pid: third.child.pid });
      expect((await connect(third, third.token).thread.get.query({ threadId })).title).toBe("before the crash");
    } finally {
      third.child.kill("SIGTERM");
      expect(await third.exited).toEqual({ code: 0, signal: null });
    }
    // A clean stop releases it.
    await expect(readFile(path.join(dataDir, LOCK_FILE))).rejects.toThrow(/ENOENT/);
  });
});
