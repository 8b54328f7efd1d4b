import { mkdir } from "node:fs/promises";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import type { Logger } from "pino";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { guarded } from "./errors.js";
import { PrismaEventStore } from "./event-store.js";
import { PrismaClient } from "./generated/client.js";
import { migrate } from "./migrate.js";
import { pgliteSql, poolSql, type SqlClient } from "./sql.js";
import type { EventStore } from "./types.js";

export interface Database {
  prisma: PrismaClient;
  kind: "pglite" | "postgres";
  /** The driver under Prisma, for the hot append path and migrations. */
  sql: SqlClient;
  /** The event log and projections on this database. */
  store: EventStore;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgresql://… for PostgreSQL; null for the embedded PGlite under `dataDir`. */
  databaseUrl: string | null;
  dataDir: string;
  /** Connections of the PostgreSQL pool (default 10). */
  poolSize?: number;
}

/** Opens the database and applies pending migrations before anything reads it. */
export async function openDatabase(
  options: DatabaseOptions,
  context: { logger?: Logger; /** Told which migrations this open applied (`turnqueue migrate` prints them). */ onMigrated?: (names: string[]) => void } = {},
): Promise<Database> {
  const db = options.databaseUrl ? openPostgres(options.databaseUrl, options.poolSize ?? 10) : await openPglite(options.dataDir);
  try {
    const applied = await guarded(() => migrate(db.sql, { lock: db.kind === "postgres" }));
    if (applied.length > 0) context.logger?.info({ migrations: applied, database: db.kind }, "applied database migrations");
    context.onMigrated?.(applied);
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}

async function openPglite(dataDir: string): Promise<Database> {
  const dir = path.join(dataDir, "db");
  await mkdir(dir, { recursive: true });
  const pglite = await PGlite.create(dir);
  // pglite-prisma-adapter carries its own copy of Prisma's adapter typings (same protocol,
  // a distinct declaration), hence the cast.
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) as unknown as PgAdapter });
  const sql = pgliteSql(pglite);
  const store = new PrismaEventStore({ prisma, sql });
  return {
    prisma,
    kind: "pglite",
    sql,
    store,
    async close() {
      await store.close();
      await prisma.$disconnect();
      // $disconnect leaves the PGlite instance open, and an open instance keeps the process alive.
      if (!pglite.closed) await pglite.close();
    },
  };
}

type PgAdapter = NonNullable<NonNullable<ConstructorParameters<typeof PrismaClient>[0]>["adapter"]>;

function openPostgres(url: string, max: number): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    // A server that is down refuses at once (ECONNREFUSED: a fast, retryable error); this
    // bound is for an unanswering host, and for the wait for a free connection, which on a
    // busy machine must not pass for an outage.
    connectionTimeoutMillis: 15_000,
  });
  // An idle connection killed by the server (restart, pg_terminate_backend) is reported
  // here; the pool drops it and the next query opens a fresh one.
  pool.on("error", () => {});
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const sql = poolSql(pool);
  // Leave connections for reads and Prisma's own queries beside the append statements.
  const store = new PrismaEventStore({ prisma, sql }, Math.max(1, Math.floor(max / 2)));
  let closed = false;
  return {
    prisma,
    kind: "postgres",
    sql,
    store,
    async close() {
      if (closed) return;
      closed = true;
      await store.close();
      await prisma.$disconnect();
      await pool.end();
    },
  };
}
