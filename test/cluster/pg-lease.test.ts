import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PostgresLease } from "../../src/cluster/pg-lease.js";
import { StoreUnavailableError } from "../../src/store/types.js";
import { createTestDatabase, hasPostgres } from "../support/postgres.js";
import { deferred } from "./deferred.js";

describe.runIf(hasPostgres)("PostgresLease (real PostgreSQL)", () => {
  let database: { url: string; drop: () => Promise<void> };
  const leases: PostgresLease[] = [];
  // Each lease is one instance's view: its own session on the shared database.
  const open = () => {
    const lease = new PostgresLease(database.url);
    leases.push(lease);
    return lease;
  };

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await Promise.all(leases.map((lease) => lease.close()));
    await database?.drop();
  });

  it("gives a key to one instance at a time and to the other once released", async () => {
    const [a, b] = [open(), open()];
    const release = deferred();
    const entered = deferred();
    const holding = a.tryWith("thread:1", async () => {
      entered.resolve();
      await release.promise;
      return "a's result";
    });
    await entered.promise;

    expect(await b.tryWith("thread:1", async () => "b ran")).toEqual({ acquired: false });
    // Other keys are independent.
    expect(await b.tryWith("thread:2", async () => "b ran")).toEqual({ acquired: true, value: "b ran" });

    release.resolve();
    expect(await holding).toEqual({ acquired: true, value: "a's result" });
    expect(await b.tryWith("thread:1", async () => "b ran")).toEqual({ acquired: true, value: "b ran" });
  });

  it("refuses a second local holder too (session advisory locks alone are re-entrant)", async () => {
    const a = open();
    const release = deferred();
    const entered = deferred();
    const holding = a.tryWith("sweep", async () => {
      entered.resolve();
      await release.promise;
    });
    await entered.promise;
    expect(await a.tryWith("sweep", async () => "again")).toEqual({ acquired: false });
    release.resolve();
    await holding;
    expect(await a.tryWith("sweep", async () => "again")).toEqual({ acquired: true, value: "again" });
  });

  it("never has two holders when two instances contend for one key many times at once", async () => {
    const [a, b] = [open(), open()];
    let holders = 0;
    let most = 0;
    let runs = 0;
    const attempt = (lease: PostgresLease) =>
      lease.tryWith("thread:contended", async () => {
        holders++;
        most = Math.max(most, holders);
        runs++;
        // Yield to the other contenders while holding, so overlaps would show.
        await new Promise((resolve) => setImmediate(resolve));
        await new Promise((resolve) => setImmediate(resolve));
        holders--;
      });
    for (let round = 0; round < 10; round++) {
      const results = await Promise.all([...Array(10)].flatMap(() => [attempt(a), attempt(b)]));
      expect(results.some((r) => r.acquired)).toBe(true);
    }
    expect(most).toBe(1);
    expect(runs).toBeGreaterThanOrEqual(10);
  });

  it("releases the key when the work throws, and passes the error on", async () => {
    const [a, b] = [open(), open()];
    await expect(a.tryWith("thread:3", async () => Promise.reject(new Error("work failed")))).rejects.toThrow("work failed");
    expect(await b.tryWith("thread:3", async () => 1)).toEqual({ acquired: true, value: 1 });
  });

  it("works again after its session is terminated (fault injected with pg_terminate_backend)", async () => {
    const [a, b] = [open(), open()];
    expect(await a.tryWith("thread:4", async () => 1)).toEqual({ acquired: true, value: 1 });

    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const { rowCount } = await admin.query(
        "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'turnqueue-lease' and datname = current_database()",
      );
      expect(rowCount).toBeGreaterThanOrEqual(2);
    } finally {
      await admin.end();
    }

    // The first use after the drop may find the dead session; a retry at once gets a fresh
    // one. At once: no pause lets the dead socket's close be read first (a retry that found
    // the ending session again spun here until its worker ran out of memory).
    const retry = async (lease: PostgresLease) => {
      for (let attempt = 0; attempt < 100; attempt++) {
        try {
          return await lease.tryWith("thread:4", async () => "after");
        } catch (error) {
          expect(error).toBeInstanceOf(StoreUnavailableError);
        }
      }
      throw new Error("100 retries at once all found the dead session");
    };
    expect(await retry(a)).toEqual({ acquired: true, value: "after" });
    expect(await retry(b)).toEqual({ acquired: true, value: "after" });
  });

  it("fails with a retryable StoreUnavailableError when PostgreSQL is unreachable", async () => {
    const lease = new PostgresLease("postgresql://postgres@127.0.0.1:1/none");
    leases.push(lease);
    await expect(lease.tryWith("k", async () => 1)).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});
