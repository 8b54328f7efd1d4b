import type { PGlite } from "@electric-sql/pglite";
import type pg from "pg";

/**
 * The thin SQL door under Prisma, for the hot append path and the migrator: a Prisma
 * interactive transaction costs several times a plain driver round trip (measured on PGlite).
 * Parameters are positional ($1…); JSON goes in as a string and is cast in SQL.
 */
export interface Sql {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /**
   * A statement run often: parsed and planned once per connection under `name`, then only
   * executed (planning a large statement costs far more than running it, above all in PGlite).
   */
  prepared<R = Record<string, unknown>>(name: string, text: string, params: string[]): Promise<R[]>;
  /** Several statements separated by `;`, no parameters (migration files). */
  exec(text: string): Promise<void>;
}

export interface SqlClient extends Sql {
  /** Runs `fn` in one transaction on one connection; commits when it resolves. */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
}

/** A text parameter as an SQL string literal (standard_conforming_strings: only quotes are special). */
const literal = (value: string) => `'${value.replaceAll("'", "''")}'`;

export function pgliteSql(db: PGlite): SqlClient {
  // PGlite offers no named protocol-level statements; SQL PREPARE/EXECUTE is the same thing
  // for its single session.
  const prepared = new Set<string>();
  const on = (q: Pick<PGlite, "query" | "exec">): Sql => ({
    query: async (text, params) => (await q.query(text, params)).rows as never,
    exec: async (text) => {
      await q.exec(text);
    },
    async prepared(name, text, params) {
      if (!prepared.has(name)) {
        await q.exec(`prepare ${name} as ${text}`);
        prepared.add(name);
      }
      return (await q.query(`execute ${name}(${params.map(literal).join(", ")})`)).rows as never;
    },
  });
  return { ...on(db), transaction: (fn) => db.transaction((tx) => fn(on(tx))) };
}

export function poolSql(pool: pg.Pool): SqlClient {
  return {
    query: async (text, params) => (await pool.query(text, params)).rows,
    exec: async (text) => {
      await pool.query(text);
    },
    prepared: async (name, text, params) => (await pool.query({ name, text, values: params })).rows,
    async transaction(fn) {
      const client = await pool.connect();
      let broken: Error | undefined;
      // A checked-out client has no listener of the pool's: the session ending between two
      // statements (a server restart) would emit an error nobody hears, which ends the
      // process. Heard here, it fails this transaction's next statement, and the client is
      // not given back.
      const onError = (error: Error) => (broken = error);
      client.on("error", onError);
      try {
        await client.query("begin");
        const value = await fn({
          query: async (text, params) => (await client.query(text, params)).rows,
          exec: async (text) => {
            await client.query(text);
          },
          prepared: async (name, text, params) => (await client.query({ name, text, values: params })).rows,
        });
        await client.query("commit");
        return value;
      } catch (error) {
        // A failed rollback means the connection itself is gone: do not return it to the pool.
        await client.query("rollback").catch((e: Error) => (broken = e));
        throw error;
      } finally {
        // A broken client is discarded with our listener on: a late second error stays heard.
        if (!broken) client.off("error", onError);
        client.release(broken);
      }
    },
  };
}
