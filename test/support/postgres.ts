import { randomBytes } from "node:crypto";
import pg from "pg";

export const postgresUrl = process.env.TEST_DATABASE_URL ?? null;

/** `describe.runIf(hasPostgres)` for suites that need PostgreSQL (global-setup fails if it is set but down). */
export const hasPostgres = postgresUrl !== null;

/**
 * A fresh, empty database on the TEST_DATABASE_URL server, so suites (and parallel
 * workers) never see each other's rows. `drop()` removes it.
 */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  if (!postgresUrl) throw new Error("TEST_DATABASE_URL is not set");
  const name = `tq_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(postgresUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: postgresUrl });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}
