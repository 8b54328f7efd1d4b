import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { cp, mkdtemp, rename, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { openDatabase, type Database } from "../../src/store/database.js";
import { readMigrations } from "../../src/store/migrate.js";
import { createTestDatabase, hasPostgres } from "./postgres.js";

const PGLITE_VERSION = (
  JSON.parse(readFileSync(new URL("../../node_modules/@electric-sql/pglite/package.json", import.meta.url), "utf8")) as { version: string }
).version;

/**
 * For hooks that open databases: the first PGlite template of a machine runs initdb, which
 * takes up to a minute or two when the machine is busy (a time limit, not an assertion).
 */
export const OPEN_TIMEOUT_MS = 300_000;

export type DatabaseKind = Database["kind"];

/** Every database the suites can reach: PGlite always, PostgreSQL when TEST_DATABASE_URL is set. */
export const databases: DatabaseKind[] = hasPostgres ? ["pglite", "postgres"] : ["pglite"];

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

/**
 * A migrated PGlite directory, made once per machine and migration set (vitest runs each
 * file in its own process, and initdb costs seconds, up to a minute on a busy machine; a
 * copy costs milliseconds). Built aside and renamed into place, so a reader never sees a
 * half-made template and two builders racing both end with the same one.
 */
export function pgliteTemplate(): Promise<string> {
  template ??= (async () => {
    const migrations = (await readMigrations()).map((m) => `${m.name}:${m.checksum}`).join(",");
    const key = createHash("sha256").update(`${PGLITE_VERSION}|${migrations}`).digest("hex").slice(0, 16);
    const dir = path.join(os.tmpdir(), `turnqueue-pglite-template-${key}`);
    if (existsSync(path.join(dir, "db", "PG_VERSION"))) return dir;
    const building = await mkdtemp(path.join(os.tmpdir(), "tq-template-"));
    const db = await openDatabase({ databaseUrl: null, dataDir: building });
    await db.close();
    try {
      await rename(building, dir);
    } catch {
      await rm(building, { recursive: true, force: true }); // another process won the race
    }
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
