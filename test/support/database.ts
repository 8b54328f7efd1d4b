import { cp, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { openDatabase, type Database } from "../../src/store/database.js";
import { createTestDatabase } from "./postgres.js";

export type DatabaseKind = Database["kind"];

export interface TestDatabase {
  db: Database;
  /** The PGlite data directory (its `db/` holds the files), or null on PostgreSQL. */
  dataDir: string | null;
  /** The PostgreSQL URL, or null on PGlite: open a second Database on it to act as another instance. */
  url: string | null;
  /** Closes the database and removes it (directory or PostgreSQL database). */
  cleanup(): Promise<void>;
}

let template: Promise<string> | null = null;

/** A migrated PGlite directory made once per test process: initdb costs seconds, a copy does not. */
function pgliteTemplate(): Promise<string> {
  template ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "tq-template-"));
    const db = await openDatabase({ databaseUrl: null, dataDir: dir });
    await db.close();
    process.once("exit", () => void rm(dir, { recursive: true, force: true }));
    return dir;
  })();
  return template;
}

/** A fresh, migrated, empty database of the given kind. */
export async function openTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  if (kind === "postgres") {
    const { url, drop } = await createTestDatabase();
    const db = await openDatabase({ databaseUrl: url, dataDir: os.tmpdir() });
    return {
      db,
      dataDir: null,
      url,
      cleanup: async () => {
        await db.close();
        await drop();
      },
    };
  }
  const source = await pgliteTemplate();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "tq-db-"));
  await cp(path.join(source, "db"), path.join(dataDir, "db"), { recursive: true });
  const db = await openDatabase({ databaseUrl: null, dataDir });
  return {
    db,
    dataDir,
    url: null,
    cleanup: async () => {
      await db.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
