import { createHash, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Sql, SqlClient } from "./sql.js";

export const migrationsDir = fileURLToPath(new URL("../../prisma/migrations/", import.meta.url));

/** The key `prisma migrate deploy` itself locks, so the CLI and a starting server never overlap. */
const PRISMA_ADVISORY_LOCK = 72707369;

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export async function readMigrations(dir = migrationsDir): Promise<Migration[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  return Promise.all(
    names.map(async (name) => {
      const bytes = await readFile(path.join(dir, name, "migration.sql"));
      return { name, sql: bytes.toString("utf8"), checksum: createHash("sha256").update(bytes).digest("hex") };
    }),
  );
}

/**
 * Applies pending migrations, all in one transaction, and records them exactly as Prisma
 * does in `_prisma_migrations`, so `prisma migrate deploy` later sees them as applied.
 * `lock` serializes concurrent starters (PostgreSQL advisory lock; PGlite has one owner).
 */
export function migrate(sql: SqlClient, options: { lock: boolean }): Promise<string[]> {
  return sql.transaction(async (tx) => {
    // Transaction-scoped, so a crashed starter releases it with its connection.
    if (options.lock) await tx.query("select pg_advisory_xact_lock($1)", [PRISMA_ADVISORY_LOCK]);
    return applyPending(tx);
  });
}

async function applyPending(tx: Sql): Promise<string[]> {
  await tx.exec(`
    CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id"                  VARCHAR(36) PRIMARY KEY NOT NULL,
      "checksum"            VARCHAR(64) NOT NULL,
      "finished_at"         TIMESTAMPTZ,
      "migration_name"      VARCHAR(255) NOT NULL,
      "logs"                TEXT,
      "rolled_back_at"      TIMESTAMPTZ,
      "started_at"          TIMESTAMPTZ NOT NULL DEFAULT now(),
      "applied_steps_count" INTEGER NOT NULL DEFAULT 0
    )`);
  const applied = await tx.query<{ migration_name: string; checksum: string }>(
    `select migration_name, checksum from "_prisma_migrations" where finished_at is not null and rolled_back_at is null`,
  );
  const done = new Map(applied.map((m) => [m.migration_name, m.checksum]));
  const ran: string[] = [];
  for (const m of await readMigrations()) {
    const seen = done.get(m.name);
    if (seen !== undefined) {
      if (seen !== m.checksum) throw new Error(`migration ${m.name} was modified after it was applied`);
      continue;
    }
    const id = randomUUID();
    await tx.query(
      `insert into "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) values ($1, $2, $3, now(), 0)`,
      [id, m.checksum, m.name],
    );
    await tx.exec(m.sql);
    await tx.query(`update "_prisma_migrations" set finished_at = now(), applied_steps_count = 1 where id = $1`, [id]);
    ran.push(m.name);
  }
  return ran;
}
