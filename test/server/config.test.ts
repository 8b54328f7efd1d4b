import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigError, defaultLimits, loadConfig } from "../../src/config.js";

describe("loadConfig", () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-config-"));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("defaults to the embedded database on 127.0.0.1:4780", async () => {
    const config = await loadConfig({ env: { TURNQUEUE_DATA_DIR: dataDir } });
    expect(config).toMatchObject({ host: "127.0.0.1", port: 4780, dataDir, databaseUrl: null, redisUrl: null, logLevel: "info" });
  });

  it("reads the environment, and flags win over it", async () => {
    const config = await loadConfig({
      env: {
        TURNQUEUE_DATA_DIR: dataDir,
        TURNQUEUE_PORT: "5000",
        TURNQUEUE_HOST: "0.0.0.0",
        DATABASE_URL: "postgresql://u@db:5432/tq",
        REDIS_URL: "redis://cache:6379",
        TURNQUEUE_DISPATCH_TIMEOUT_MS: "1500",
        TURNQUEUE_MAX_ATTEMPTS: "2",
      },
      flags: { port: "0" },
    });
    expect(config).toMatchObject({
      host: "0.0.0.0",
      port: 0,
      databaseUrl: "postgresql://u@db:5432/tq",
      redisUrl: "redis://cache:6379",
      drainPolicy: { maxQueueItems: 1000, maxAttempts: 2, retryBaseMs: 500, retryMaxMs: 30_000, dispatchTimeoutMs: 1500 },
    });
  });

  it("lists every bad value with its flag and variable, and writes nothing", async () => {
    const dir = path.join(dataDir, "never-created");
    const error = await loadConfig({
      env: { TURNQUEUE_DATA_DIR: dir, TURNQUEUE_PORT: "-1", REDIS_URL: "http://cache", TURNQUEUE_SECRET: "short" },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.stringMatching(/^--port \/ TURNQUEUE_PORT: .* \(got "-1"\)$/),
      expect.stringMatching(/^--redis-url \/ REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/),
      expect.stringMatching(/^--secret \/ TURNQUEUE_SECRET: must be at least 32 characters/),
    ]);
    await expect(stat(dir)).rejects.toThrow(/ENOENT/);
  });

  it("reads the limits per body, batch, connection and token from flags and environment, and refuses nonsense", async () => {
    const config = await loadConfig({
      env: { TURNQUEUE_DATA_DIR: dataDir, TURNQUEUE_MAX_BODY_BYTES: "65536", TURNQUEUE_MAX_CONNECTIONS_PER_TOKEN: "3" },
      flags: { maxBatchSize: "8", maxSubscriptionsPerConnection: "5" },
    });
    expect(config.limits).toEqual({ maxBodyBytes: 65_536, maxBatchSize: 8, maxSubscriptionsPerConnection: 5, maxConnectionsPerToken: 3 });
    expect((await loadConfig({ env: { TURNQUEUE_DATA_DIR: dataDir } })).limits).toEqual(defaultLimits);
    const error = await loadConfig({ env: { TURNQUEUE_DATA_DIR: dataDir, TURNQUEUE_MAX_BATCH_SIZE: "0" } }).catch((e: unknown) => e);
    expect((error as ConfigError).problems).toEqual([expect.stringMatching(/^--max-batch-size \/ TURNQUEUE_MAX_BATCH_SIZE: /)]);
  });

  it("generates the secret once, private to its owner, and keeps it across starts", async () => {
    const first = await loadConfig({ env: { TURNQUEUE_DATA_DIR: dataDir } });
    const file = path.join(dataDir, "secret");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(first.secret.length).toBeGreaterThanOrEqual(32);
    const again = await loadConfig({ env: { TURNQUEUE_DATA_DIR: dataDir } });
    expect(again.secret).toBe(first.secret);
    expect((await readFile(file, "utf8")).trim()).toBe(first.secret);
  });

  it("uses TURNQUEUE_SECRET when given, without touching the data directory", async () => {
    const secret = "s".repeat(40);
    const config = await loadConfig({ env: { TURNQUEUE_DATA_DIR: path.join(dataDir, "unused"), TURNQUEUE_SECRET: secret } });
    expect(config.secret).toBe(secret);
    await expect(stat(path.join(dataDir, "unused"))).rejects.toThrow(/ENOENT/);
  });

  it("refuses a stored secret that was truncated", async () => {
    await writeFile(path.join(dataDir, "secret"), "tooshort", { mode: 0o600 });
    await expect(loadConfig({ env: { TURNQUEUE_DATA_DIR: dataDir } })).rejects.toThrow(/shorter than 32 characters/);
  });
});
