import pg from "pg";
import type { TestProject } from "vitest/node";
import { chromiumForTests, systemSearch } from "./chromium.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** The browser the browser suites drive; null skips them (never under CI). */
    chromiumPath: string | null;
  }
}

/**
 * The PostgreSQL suites run when TEST_DATABASE_URL is set, and then must not skip: an
 * unreachable server fails the whole run here, loudly, before any test starts.
 */
export default async function setup(project: TestProject) {
  project.provide("chromiumPath", chromiumForTests(systemSearch()));
  const url = process.env.TEST_DATABASE_URL;
  if (!url) {
    console.warn("TEST_DATABASE_URL is not set: PostgreSQL suites are skipped (CI always sets it).");
    return;
  }
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    await client.query("select 1");
  } catch (error) {
    throw new Error(`TEST_DATABASE_URL is set (${url}) but PostgreSQL is unreachable: ${(error as Error).message}`);
  } finally {
    await client.end().catch(() => {});
  }
}
