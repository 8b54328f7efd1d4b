import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InProcessBus } from "../../src/cluster/bus.js";
import { createCluster } from "../../src/cluster/index.js";
import { InProcessLease } from "../../src/cluster/lease.js";
import { PostgresLease } from "../../src/cluster/pg-lease.js";
import { RedisBus } from "../../src/cluster/redis-bus.js";
import { loadConfig } from "../../src/config.js";
import type { RawSettings } from "../../src/config.js";
import { openDatabase, type Database } from "../../src/store/database.js";
import { createTestDatabase, hasPostgres } from "../support/postgres.js";
import { deferred } from "./deferred.js";
import { redisAvailable, redisUrl } from "./redis.js";

const hasRedis = await redisAvailable();

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "tq-cluster-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const configOf = (flags: RawSettings) =>
  loadConfig({ env: {}, flags: { dataDir: dir, secret: "s".repeat(32), logLevel: "silent", ...flags } });

describe("createCluster on the embedded PGlite", () => {
  let db: Database;
  beforeAll(async () => {
    db = await openDatabase({ databaseUrl: null, dataDir: dir });
  });
  afterAll(async () => {
    await db?.close();
  });

  it("uses the in-process bus and lease when there is no Redis", async () => {
    const { bus, lease } = await createCluster(await configOf({}), db);
    expect(bus).toBeInstanceOf(InProcessBus);
    expect(lease).toBeInstanceOf(InProcessLease);
    await Promise.all([bus.close(), lease.close()]);
  });

  it("refuses a Redis URL with PGlite, saying that several instances need PostgreSQL", async () => {
    // loadConfig already refuses this pair; createCluster still guards a Config built by hand.
    await expect(createCluster({ ...(await configOf({})), redisUrl }, db)).rejects.toThrow(
      /REDIS_URL is set but the database is the embedded PGlite.*Set --database-url \/ DATABASE_URL/,
    );
  });
});

describe.runIf(hasPostgres && hasRedis)("createCluster on PostgreSQL with Redis (two instances)", () => {
  let database: { url: string; drop: () => Promise<void> };
  const dbs: Database[] = [];
  const clusters: Awaited<ReturnType<typeof createCluster>>[] = [];
  // One instance's worth: its own Database (pool) and its own cluster.
  const instance = async () => {
    const db = await openDatabase({ databaseUrl: database.url, dataDir: dir });
    dbs.push(db);
    const cluster = await createCluster(await configOf({ databaseUrl: database.url, redisUrl }), db);
    clusters.push(cluster);
    return cluster;
  };

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    for (const { bus, lease } of clusters) await Promise.all([bus.close(), lease.close()]);
    await Promise.all(dbs.map((db) => db.close()));
    await database?.drop();
  });

  it("builds a Redis bus and a PostgreSQL lease that both instances share", async () => {
    const [a, b] = [await instance(), await instance()];
    expect(a.bus).toBeInstanceOf(RedisBus);
    expect(a.lease).toBeInstanceOf(PostgresLease);

    const topic = `tq:test:${path.basename(database.url)}`;
    const got = deferred<Uint8Array>();
    await b.bus.subscribe(topic, got.resolve);
    await a.bus.publish(topic, new Uint8Array([42]));
    expect([...(await got.promise)]).toEqual([42]);

    const entered = deferred<void>();
    const release = deferred<void>();
    const holding = a.lease.tryWith("thread:x", async () => {
      entered.resolve();
      await release.promise;
      return "a";
    });
    await entered.promise;
    expect(await b.lease.tryWith("thread:x", async () => "b")).toEqual({ acquired: false });
    release.resolve();
    expect(await holding).toEqual({ acquired: true, value: "a" });
    expect(await b.lease.tryWith("thread:x", async () => "b")).toEqual({ acquired: true, value: "b" });
  });

  it("fails to start, naming Redis, when Redis is unreachable", async () => {
    const db = await openDatabase({ databaseUrl: database.url, dataDir: dir });
    dbs.push(db);
    await expect(createCluster(await configOf({ databaseUrl: database.url, redisUrl: "redis://127.0.0.1:1" }), db)).rejects.toThrow(
      /Redis at redis:\/\/127\.0\.0\.1:1.* is unreachable/,
    );
  });
});
