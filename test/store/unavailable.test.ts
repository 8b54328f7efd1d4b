import net from "node:net";
import pg from "pg";
import { describe, expect, test } from "vitest";
import { openDatabase } from "../../src/store/database.js";
import { StoreUnavailableError } from "../../src/store/types.js";
import { add, cmd, testEngine, user } from "../engine/harness.js";
import { createTestDatabase, hasPostgres, postgresUrl } from "../support/postgres.js";

/** A TCP relay in front of PostgreSQL that the test can cut and restore: the fault injector. */
async function relay(target: URL) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  const listen = (port: number) => new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    /** The database goes away: open connections die, new ones are refused. */
    cut: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
    restore: () => listen(port),
    close: () => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())),
  };
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });

describe("store unavailable", () => {
  test("opening a database where nothing listens fails at once with StoreUnavailableError (fault injected)", async () => {
    const port = await freePort();
    await expect(openDatabase({ databaseUrl: `postgresql://postgres@127.0.0.1:${port}/none`, dataDir: "unused" })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
  });

  test.runIf(hasPostgres)("a database closed to new connections (ALLOW_CONNECTIONS false, fault injected) is unavailable, not an internal error", async () => {
    const { url, drop } = await createTestDatabase();
    const admin = new pg.Client({ connectionString: postgresUrl! });
    await admin.connect();
    const name = new URL(url).pathname.slice(1);
    try {
      await admin.query(`alter database ${name} allow_connections false`);
      await expect(openDatabase({ databaseUrl: url, dataDir: "unused" })).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await admin.query(`alter database ${name} allow_connections true`);
      await admin.end();
      await drop();
    }
  });

  test.runIf(hasPostgres)("the database going away fails commands with StoreUnavailableError, and service resumes when it returns (fault injected)", async () => {
    const { url, drop } = await createTestDatabase();
    const proxy = await relay(new URL(url));
    const viaProxy = new URL(url);
    viaProxy.hostname = "127.0.0.1";
    viaProxy.port = String(proxy.port);
    const db = await openDatabase({ databaseUrl: viaProxy.toString(), dataDir: "unused" });
    const engine = testEngine(db.store);
    try {
      await engine.execute("t", cmd({ type: "thread.create", workspaceId: "w" }), user);
      await engine.execute("t", add(1), user);

      await proxy.cut();
      await expect(engine.execute("t", add(2), user)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(engine.load("t")).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(db.store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(engine.execute("t", add(3), user)).rejects.toBeInstanceOf(StoreUnavailableError);

      await proxy.restore();
      await db.store.ping();
      const after = await engine.execute("t", add(4), user);
      expect(after.version).toBe(3);
      // Nothing refused while away was half-written; everything acknowledged is there.
      const items = await db.prisma.queueItem.findMany({ where: { threadId: "t" }, select: { id: true } });
      expect(items.map((i) => i.id).sort()).toEqual(["item-1", "item-4"]);
    } finally {
      await engine.close();
      await db.close();
      await proxy.close();
      await drop();
    }
  });

  // `npm run chaos` (restart-postgres) lost an instance this way: a session ended between two
  // statements of a transaction emitted an error nobody listened to, which ends a process.
  test.runIf(hasPostgres)("a transaction whose session the server ends between its statements fails, and the process and the next transaction go on (fault injected: pg_terminate_backend)", async () => {
    const { url, drop } = await createTestDatabase();
    const db = await openDatabase({ databaseUrl: url, dataDir: "unused" });
    const admin = new pg.Client({ connectionString: postgresUrl! });
    await admin.connect();
    try {
      const ended = db.sql.transaction(async (tx) => {
        const [{ pid }] = await tx.query<{ pid: number }>("select pg_backend_pid() as pid");
        await admin.query("select pg_terminate_backend($1)", [pid]);
        // No statement of ours is running while the server's notice of the end arrives.
        await new Promise((resolve) => setTimeout(resolve, 200));
        return tx.query("select 1");
      });
      await expect(ended).rejects.toThrow();
      expect(await db.sql.transaction((tx) => tx.query<{ n: number }>("select 1 as n"))).toEqual([{ n: 1 }]);
    } finally {
      await admin.end();
      await db.close();
      await drop();
    }
  });

  test.runIf(hasPostgres)("connections killed by the server (pg_terminate_backend) are replaced and commands go on (fault injected)", async () => {
    const { url, drop } = await createTestDatabase();
    const db = await openDatabase({ databaseUrl: url, dataDir: "unused" });
    const engine = testEngine(db.store);
    const admin = new pg.Client({ connectionString: postgresUrl! });
    await admin.connect();
    try {
      await engine.execute("t", cmd({ type: "thread.create", workspaceId: "w" }), user);
      await engine.execute("t", add(1), user);
      const killed = await admin.query(
        `select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`,
        [new URL(url).pathname.slice(1)],
      );
      expect(killed.rowCount).toBeGreaterThan(0);
      // A command may meet a dead connection once (and then says so, retryably); the next ones work.
      const outcome = await engine.execute("t", add(2), user).catch((e: unknown) => e);
      if (outcome instanceof Error) expect(outcome).toBeInstanceOf(StoreUnavailableError);
      await engine.execute("t", add(2), user);
      await engine.execute("t", add(3), user);
      const items = await db.prisma.queueItem.findMany({ where: { threadId: "t" }, select: { id: true } });
      expect(items.map((i) => i.id).sort()).toEqual(["item-1", "item-2", "item-3"]);
    } finally {
      await admin.end();
      await engine.close();
      await db.close();
      await drop();
    }
  });
});
