import { cp, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../../src/config.js";
import type { Role } from "../../src/domain/index.js";
import { startTurnqueue } from "../../src/server.js";
import type { Config } from "../../src/config.js";
import type { Services } from "../../src/server.js";
import { pgliteTemplate } from "./database.js";
import { createTestDatabase } from "./postgres.js";

export interface TestServerOptions {
  /** Embedded PGlite in a temp dir (default), or a fresh database on TEST_DATABASE_URL. */
  database?: "pglite" | "postgres";
  /** Overrides applied last (port 0, a temp data dir and silent logs are the defaults). */
  config?: Partial<Config>;
  /** A fake clock; the test's name must say so. */
  now?: () => Date;
}

export interface TestServer {
  /** http://127.0.0.1:<port>: `${url}/trpc` for HTTP tRPC. */
  url: string;
  /** ws://127.0.0.1:<port>: `${wsUrl}/trpc` for tRPC subscriptions, `${wsUrl}/yjs` for WebsocketProvider. */
  wsUrl: string;
  services: Services;
  /** A token signed by this server; defaults: role `user`, workspace `local`, sub = the role. */
  token(role?: Role, workspaceId?: string, sub?: string): Promise<string>;
  /**
   * Stops this server gracefully and starts another on the same data, secret and port (so
   * connected clients can reconnect). Use the returned server from then on.
   */
  restart(): Promise<TestServer>;
  /** Stops the server and deletes its data (temp dir or database). */
  close(): Promise<void>;
}

/** A real Turnqueue (real database, real HTTP and WebSocket port) for integration tests. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-test-"));
  const pg = options.database === "postgres" ? await createTestDatabase() : null;
  if (!pg) await seedPglite(dataDir);
  const removeData = async () => {
    await rm(dataDir, { recursive: true, force: true });
    await pg?.drop();
  };
  try {
    const base = await loadConfig({
      env: {},
      flags: { dataDir, port: "0", logLevel: process.env.TEST_LOG_LEVEL ?? "silent" },
    });
    const config: Config = { ...base, databaseUrl: pg?.url ?? null, ...options.config };
    return await launch(config, options.now, removeData);
  } catch (error) {
    await removeData();
    throw error;
  }
}

async function launch(config: Config, now: (() => Date) | undefined, removeData: () => Promise<void>): Promise<TestServer> {
  const app = await startTurnqueue(config, { now });
  const port = Number(new URL(app.url).port);
  return {
    url: app.url,
    wsUrl: app.url.replace(/^http/, "ws"),
    services: app.services,
    token: (role = "user", workspaceId = "local", sub = role) => app.services.auth.issue({ sub, workspaceId, role }),
    async restart() {
      await app.close();
      return launch({ ...config, port }, now, removeData);
    },
    async close() {
      await app.close();
      await removeData();
    },
  };
}

/** Puts a migrated, empty embedded database into `dataDir` (for servers a test starts itself). */
export async function seedPglite(dataDir: string): Promise<void> {
  await cp(path.join(await pgliteTemplate(), "db"), path.join(dataDir, "db"), { recursive: true });
}

