import type { PGlite } from "@electric-sql/pglite";
import type pg from "pg";

/**
 * The thin SQL door under Prisma, for the hot append path and the migrator: a Prisma
 * interactive transaction costs several times a plain driver round trip (TOOLCHAIN.md).
 * Parameters are positional ($1…); JSON goes in as a string and is cast in SQL.
 */
export interface Sql {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /** Several statements separated by `;`, no parameters (migration files). */
  exec(text: string): Promise<void>;
}

export interface SqlClient extends Sql {
  /** Runs `fn` in one transaction on one connection; commits when it resolves. */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
}

export function pgliteSql(db: PGlite): SqlClient {
  return {
    query: async (text, params) => (await db.query(text, params)).rows as never,
    exec: async (text) => {
      await db.exec(text);
    },
    transaction: (fn) =>
      db.transaction((tx) =>
        fn({
          query: async (text, params) => (await tx.query(text, params)).rows as never,
          exec: async (text) => {
            await tx.exec(text);
          },
        }),
      ),
  };
}

export function poolSql(pool: pg.Pool): SqlClient {
  return {
    query: async (text, params) => (await pool.query(text, params)).rows,
    exec: async (text) => {
      await pool.query(text);
    },
    async transaction(fn) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query("begin");
        const value = await fn({
          query: async (text, params) => (await client.query(text, params)).rows,
          exec: async (text) => {
            await client.query(text);
          },
        });
        await client.query("commit");
        return value;
      } catch (error) {
        // A failed rollback means the connection itself is gone: do not return it to the pool.
        await client.query("rollback").catch((e: Error) => (broken = e));
        throw error;
      } finally {
        client.release(broken);
      }
    },
  };
}
