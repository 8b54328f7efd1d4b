import type { Logger } from "pino";
import type { Config } from "../config.js";
import type { Database } from "../store/database.js";
import { InProcessBus, type Bus } from "./bus.js";
import { InProcessLease, type Lease } from "./lease.js";
import { PostgresLease } from "./pg-lease.js";
import { RedisBus } from "./redis-bus.js";

export { channels, type Bus } from "./bus.js";
export type { Lease } from "./lease.js";

/**
 * The bus and lease for this deployment. The embedded default is one process: in-process
 * bus and lease. With `redisUrl` several instances share one PostgreSQL database: Redis
 * pub/sub carries events and documents between them, PostgreSQL advisory locks give each
 * lease one holder. On PostgreSQL without Redis (one instance), the lease is still taken in
 * PostgreSQL, so a second instance started by mistake does not double the timers' work.
 */
export async function createCluster(
  config: Pick<Config, "redisUrl" | "databaseUrl">,
  db: Pick<Database, "kind">,
  options: { logger?: Pick<Logger, "warn"> } = {},
): Promise<{ bus: Bus; lease: Lease }> {
  if (config.redisUrl && db.kind !== "postgres") {
    throw new Error(
      "--redis-url / REDIS_URL is set but the database is the embedded PGlite, which only one process can open: " +
        "instances sharing a Redis bus need one shared PostgreSQL database. Set --database-url / DATABASE_URL to a postgresql:// server, or unset the Redis URL.",
    );
  }
  if (db.kind === "postgres" && !config.databaseUrl) {
    throw new Error("the database is PostgreSQL but config.databaseUrl is empty: the lease opens its own connection from it");
  }
  const lease = db.kind === "postgres" ? new PostgresLease(config.databaseUrl!) : new InProcessLease();
  if (!config.redisUrl) return { bus: new InProcessBus(), lease };
  try {
    const logger = options.logger;
    const bus = await RedisBus.connect({
      url: config.redisUrl,
      ...(logger && { onError: (error, context) => logger.warn({ err: error, ...context }, "bus message dropped") }),
    });
    return { bus, lease };
  } catch (error) {
    await lease.close();
    throw error;
  }
}
