import pg from "pg";
import { StoreUnavailableError } from "../store/types.js";
import type { Lease } from "./lease.js";

/**
 * `Lease` on PostgreSQL session advisory locks, shared by every instance on one database.
 *
 * Why a dedicated `pg` connection rather than the Database's Prisma client with
 * `pg_try_advisory_xact_lock` inside `$transaction`: a transaction-scoped lock would pin
 * one pooled connection, idle in transaction, for the whole of `fn` — per key held. With
 * many threads' timers leased at once that drains the pool that `fn` itself needs for its
 * commands (a deadlock by starvation), and Prisma's interactive-transaction timeout would
 * abort long holders. Session locks on one connection cost one connection per instance
 * however many keys are held, and `fn` runs outside any transaction.
 *
 * Session locks are re-entrant within a session, so the keys this instance holds are also
 * tracked here: a second local `tryWith` of a held key is refused like a remote one.
 * If the connection drops, PostgreSQL releases its locks and another instance may take a
 * key while `fn` still runs here; that is acceptable because a lease only saves duplicate
 * work — correctness rests on the claim's optimistic append.
 */
export class PostgresLease implements Lease {
  private readonly held = new Set<string>();
  private connection: { client: pg.Client; ready: Promise<pg.Client> } | null = null;
  private closed = false;

  constructor(private readonly connectionString: string) {}

  async tryWith<T>(key: string, fn: () => Promise<T>): Promise<{ acquired: true; value: T } | { acquired: false }> {
    if (this.closed) throw new Error("the PostgreSQL lease is closed");
    if (this.held.has(key)) return { acquired: false };
    this.held.add(key);
    try {
      let client: pg.Client | null = null;
      let locked: boolean;
      try {
        client = await this.client();
        locked = (await client.query<{ locked: boolean }>(LOCK, [namespaced(key)])).rows[0]!.locked;
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        if (client) this.drop(client);
        throw new StoreUnavailableError(`lease ${key}: PostgreSQL is unavailable`, { cause: error });
      }
      if (!locked) return { acquired: false };
      const session = client;
      try {
        return { acquired: true, value: await fn() };
      } finally {
        // A lock we cannot release must not outlive this call: ending the session frees it.
        await session.query(UNLOCK, [namespaced(key)]).catch(() => this.drop(session));
      }
    } finally {
      this.held.delete(key);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const connection = this.connection;
    this.connection = null;
    if (connection) await connection.ready.then((client) => client.end()).catch(() => {});
  }

  /**
   * Forgets a broken session now, so the next tryWith opens a fresh one, and ends it (which
   * frees its locks). Not left to its "end" event: that waits for the socket to close, and a
   * caller retrying at once would find the ending session again, and fail again without ever
   * yielding to the I/O that would close it (a test did so until its worker ran out of memory).
   */
  private drop(client: pg.Client): void {
    if (this.connection?.client === client) this.connection = null;
    client.end().catch(() => {});
  }

  /** The session connection, opened on first use and reopened after it broke. */
  private client(): Promise<pg.Client> {
    if (this.connection) return this.connection.ready;
    const client = new pg.Client({
      connectionString: this.connectionString,
      application_name: "turnqueue-lease",
      keepAlive: true,
      // Taking or releasing a lock is instant; no answer means the link is dead.
      query_timeout: QUERY_TIMEOUT_MS,
      connectionTimeoutMillis: QUERY_TIMEOUT_MS,
    });
    const forget = () => {
      if (this.connection?.client === client) this.connection = null;
    };
    // A broken session has lost its locks; the next tryWith opens a fresh one.
    client.on("error", forget);
    client.on("end", forget);
    const opening = client.connect().then(
      () => client,
      (error: unknown) => {
        forget();
        throw error;
      },
    );
    this.connection = { client, ready: opening };
    return opening;
  }
}

const LOCK = "select pg_try_advisory_lock(hashtextextended($1, 0)) as locked";
const UNLOCK = "select pg_advisory_unlock(hashtextextended($1, 0))";
const QUERY_TIMEOUT_MS = 5_000;

/**
 * The text hashed (by 64-bit `hashtextextended` in SQL, rather than 32-bit `hashtext`, so
 * distinct keys — one per thread — practically never share a lock) into the lock id.
 * Namespaced, because advisory locks are per database and other software may use them too.
 */
function namespaced(key: string): string {
  return `turnqueue:${key}`;
}

function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  if (typeof e?.code === "string" && (/^(08|57P)/.test(e.code) || ["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "ETIMEDOUT", "EPIPE"].includes(e.code))) return true;
  return /Connection terminated|not queryable|Client was closed|timeout/i.test(e?.message ?? "");
}
