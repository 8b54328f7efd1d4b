import { link, mkdir, readFile, rename, rm, unlink, writeFile } from "node:fs/promises";
import { unlinkSync } from "node:fs";
import path from "node:path";
import { dataDirError, named } from "../config.js";
import { StartupError } from "../exit-codes.js";

/** The file in the data directory that says which process serves the embedded database. */
export const LOCK_FILE = "server.lock";

export interface DataDirLock {
  readonly file: string;
  /** Removes the lock if it is still ours. */
  close(): Promise<void>;
}

interface Holder {
  pid: number;
  startedAt: string;
}

/**
 * PGlite is one process's database: two servers writing the same files corrupt it. The lock
 * is a file created exclusively, holding the owner's pid. A lock whose pid is not alive was
 * left by a crash (SIGKILL, power loss) and is taken over: renamed aside first, so of two
 * servers recovering at once only one gets it, then created afresh.
 */
export async function lockDataDir(dataDir: string, options: { pid?: number } = {}): Promise<DataDirLock> {
  const pid = options.pid ?? process.pid;
  const file = path.join(dataDir, LOCK_FILE);
  const mine: Holder = { pid, startedAt: new Date().toISOString() };
  try {
    await mkdir(dataDir, { recursive: true });
  } catch (error) {
    throw dataDirError(dataDir, error);
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await createExclusively(file, mine, dataDir)) return held(file, pid);
    const holder = await readHolder(file);
    if (holder === "gone") continue;
    if (holder !== null && holder.pid !== pid && isAlive(holder.pid)) {
      throw new StartupError(
        "dataDirLocked",
        `the data directory ${dataDir} is in use by another turnqueue server (pid ${holder.pid}): stop that one first, ` +
          `or give this one its own ${named("dataDir")} (for several servers on one database use DATABASE_URL)`,
      );
    }
    // Stale (its process is gone) or unreadable (a crash while writing it): move it aside.
    const aside = `${file}.stale-${pid}-${attempt}`;
    try {
      await rename(file, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue; // another server moved it first
      throw dataDirError(dataDir, error);
    }
    // What was moved may be a fresh lock another recovering server wrote after our read: put it back.
    const moved = await readHolder(aside);
    if (moved !== "gone" && moved !== null && moved.pid !== holder?.pid && isAlive(moved.pid)) {
      await link(aside, file).catch(() => {});
    }
    await rm(aside, { force: true });
  }
  throw new StartupError("dataDirLocked", `could not take the lock ${file}: other servers keep starting on ${dataDir}`);
}

async function createExclusively(file: string, holder: Holder, dataDir: string): Promise<boolean> {
  try {
    await writeFile(file, `${JSON.stringify(holder)}\n`, { flag: "wx", mode: 0o644 });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw dataDirError(dataDir, error);
  }
}

/** The holder, null when the file is unreadable as a lock, "gone" when it vanished meanwhile. */
async function readHolder(file: string): Promise<Holder | null | "gone"> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return "gone";
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as Partial<Holder>;
    return Number.isInteger(parsed.pid) && parsed.pid! > 0 ? { pid: parsed.pid!, startedAt: String(parsed.startedAt) } : null;
  } catch {
    return null;
  }
}

/** Signal 0 checks existence; EPERM means alive under another user. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function held(file: string, pid: number): DataDirLock {
  // A crash by an uncaught exception still runs exit handlers: leave no stale lock then either.
  const onExit = () => {
    try {
      unlinkSync(file);
    } catch {
      // Already gone.
    }
  };
  process.once("exit", onExit);
  return {
    file,
    async close() {
      process.off("exit", onExit);
      const holder = await readHolder(file).catch(() => null);
      if (holder !== "gone" && holder?.pid === pid) await unlink(file).catch(() => {});
    },
  };
}
