import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openDatabase } from "../../src/store/database.js";
import { readMigrations } from "../../src/store/migrate.js";
import type { Sql } from "../../src/store/sql.js";
import { OPEN_TIMEOUT_MS, openTestDatabase, type TestDatabase } from "../support/database.js";
import { createTestDatabase, hasPostgres } from "../support/postgres.js";

const run = promisify(execFile);
const kinds = hasPostgres ? (["pglite", "postgres"] as const) : (["pglite"] as const);
const cwd = new URL("../..", import.meta.url).pathname;

// The CLI itself, not through npx: a child we stop must be the process that holds the database.
const prismaCli = new URL("../../node_modules/prisma/build/index.js", import.meta.url).pathname;
const prisma = (args: string[]) => run(process.execPath, [prismaCli, ...args], { cwd, maxBuffer: 16 << 20 });

/** Tables, columns, indexes and constraints of the public schema, sorted here, without Prisma's bookkeeping table. */
async function catalog(query: (text: string) => Promise<Record<string, unknown>[]>) {
  const sorted = (rows: Record<string, unknown>[]) => rows.map((r) => JSON.stringify(r)).sort();
  return {
    columns: sorted(
      await query(`select table_name, column_name, data_type, is_nullable, column_default, datetime_precision, ordinal_position
                   from information_schema.columns where table_schema = 'public' and table_name <> '_prisma_migrations'`),
    ),
    indexes: sorted(await query(`select indexname, indexdef from pg_indexes where schemaname = 'public' and tablename <> '_prisma_migrations'`)),
    constraints: sorted(
      await query(`select conname, pg_get_constraintdef(oid) as def from pg_constraint
                   where connamespace = 'public'::regnamespace
                     and conrelid not in (select oid from pg_class where relname = '_prisma_migrations')`),
    ),
  };
}

/**
 * Output of `prisma migrate deploy` up to its verdict. On PGlite the CLI never exits by
 * itself (prisma.config.ts's adapter leaves its PGlite instance open), so the child is
 * stopped once the verdict is printed.
 */
function deployOutput(env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [prismaCli, "migrate", "deploy"], { cwd, env: { ...process.env, ...env } });
    let out = "";
    const verdict = /No pending migrations to apply|migrations? (have been )?applied|Error/;
    const take = (chunk: Buffer) => {
      out += chunk.toString();
      if (verdict.test(out)) {
        child.kill();
        resolve(out);
      }
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("error", reject);
    child.on("exit", () => resolve(out));
  });
}

const sqlQuery = (sql: Sql) => (text: string) => sql.query(text);

describe.each(kinds)("migrations (%s)", (kind) => {
  let t: TestDatabase;
  let script: string;
  beforeAll(async () => {
    [t, { stdout: script }] = await Promise.all([
      openTestDatabase(kind),
      prisma(["migrate", "diff", "--from-empty", "--to-schema-datamodel", "prisma/schema.prisma", "--script"]),
    ]);
  }, OPEN_TIMEOUT_MS);
  afterAll(async () => t?.cleanup());

  test("the migrations folder, as applied at open, produces exactly the schema of schema.prisma", async () => {
    const applied = await catalog(sqlQuery(t.db.sql));
    let expected: Awaited<ReturnType<typeof catalog>>;
    if (kind === "pglite") {
      const reference = new PGlite();
      await reference.exec(script);
      expected = await catalog(async (text) => (await reference.query<Record<string, unknown>>(text)).rows);
      await reference.close();
    } else {
      const reference = await createTestDatabase();
      const client = new pg.Client({ connectionString: reference.url });
      await client.connect();
      await client.query(script);
      expected = await catalog(async (text) => (await client.query(text)).rows);
      await client.end();
      await reference.drop();
    }
    expect(applied.columns.length).toBeGreaterThan(40);
    expect(applied).toEqual(expected);
  });

  test("`prisma migrate deploy` sees every migration as already applied", async () => {
    const expected = (await readMigrations()).map((m) => m.name);
    const rows = await t.db.sql.query<{ migration_name: string; applied_steps_count: number }>(
      `select migration_name, applied_steps_count from "_prisma_migrations" where finished_at is not null`,
    );
    expect(rows.map((r) => r.migration_name).sort()).toEqual(expected);
    let env: Record<string, string>;
    if (kind === "postgres") env = { DATABASE_URL: t.url! };
    else {
      // PGlite has one owner: the CLI may open the directory only while we have it closed.
      await t.db.close();
      env = { TURNQUEUE_DB_DIR: `${t.dataDir}/db` };
    }
    expect(await deployOutput(env)).toContain("No pending migrations to apply");
  }, 240_000); // the Prisma CLI starts slowly (and PGlite's initdb-sized open) on a busy machine
});

describe.runIf(hasPostgres)("migrations on a shared PostgreSQL", () => {
  test("two instances starting together on an empty database migrate it once", async () => {
    const { url, drop } = await createTestDatabase();
    try {
      const [a, b] = await Promise.all([
        openDatabase({ databaseUrl: url, dataDir: "unused" }),
        openDatabase({ databaseUrl: url, dataDir: "unused" }),
      ]);
      const rows = await a.sql.query<{ n: number }>(`select count(*)::int as n from "_prisma_migrations"`);
      expect(rows[0]?.n).toBe((await readMigrations()).length);
      await a.store.ping();
      await b.store.ping();
      await Promise.all([a.close(), b.close()]);
    } finally {
      await drop();
    }
  });
});
