import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { build } from "vite";
import type { TestProject } from "vitest/node";
import { chromiumForTests, systemSearch } from "./chromium.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

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
  const chromiumPath = chromiumForTests(systemSearch());
  project.provide("chromiumPath", chromiumPath);
  if (chromiumPath && mayRunBrowserSuites(process.argv)) await buildBoard();
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

/**
 * The web board the browser suites load, built once from the current sources (as `npm run
 * build:web` does) before any worker starts: built by each suite, two workers would empty
 * client/web/dist under each other's running pages.
 */
async function buildBoard(): Promise<void> {
  await build({ configFile: path.join(repoRoot, "client/web/vite.config.ts"), logLevel: "warn" });
}

/**
 * False only when every file filter of the run names a path outside test/browser (a run of
 * other suites need not wait for the build); a bare `vitest run`, or a filter that is not a
 * path, may select a browser suite.
 */
function mayRunBrowserSuites(argv: readonly string[]): boolean {
  const filters = argv.slice(argv.indexOf("run") + 1).filter((arg) => !arg.startsWith("-"));
  if (argv.indexOf("run") === -1 || filters.length === 0) return true;
  const browser = path.join(repoRoot, "test/browser");
  return filters.some((filter) => {
    const full = path.resolve(filter);
    return !existsSync(full) || full === browser || full.startsWith(browser + path.sep) || browser.startsWith(full + path.sep);
  });
}
