import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Bus } from "./cluster/bus.js";
import type { Lease } from "./cluster/lease.js";
import type { DrainPolicy, Role } from "./domain/index.js";
import type { Engine } from "./engine/types.js";
import type { Database } from "./store/database.js";
import type { EventStore } from "./store/types.js";

export interface Config {
  host: string;
  port: number;
  /** Embedded default: PGlite files and the generated secret live here. */
  dataDir: string;
  /** postgresql://… runs on PostgreSQL instead of the embedded PGlite. */
  databaseUrl: string | null;
  /** redis://… shares events and documents between instances. */
  redisUrl: string | null;
  /** HS256 secret for tokens. */
  secret: string;
  dispatchTimeoutMs: number;
  drainPolicy: DrainPolicy;
  /** The slow periodic safety sweep of the drain reactor. */
  sweepIntervalMs: number;
  /** Unload a document this long after its last client left. */
  docIdleMs: number;
  /** Per-item window over which Yjs text edits are coalesced into one command. */
  editCoalesceMs: number;
  logLevel: string;
  /** Browser origins allowed to call the API doors from other sites ("*" for any). */
  corsOrigins: string[];
}

/** Who is calling, from a verified token. */
export interface Principal {
  sub: string;
  workspaceId: string;
  role: Role;
}

export interface Auth {
  /** Throws when the token is missing, malformed, expired or not signed by us. */
  verify(token: string | null | undefined): Promise<Principal>;
  issue(principal: Principal, options?: { expiresIn?: string }): Promise<string>;
}

/** Everything a plug-in (api, collab, reactors) may use; wired once in server.ts. */
export interface Services {
  config: Config;
  logger: Logger;
  db: Database;
  store: EventStore;
  engine: Engine;
  bus: Bus;
  lease: Lease;
  auth: Auth;
  metrics: Registry;
  /** The only clock the service reads; tests may replace it (and must say so). */
  now: () => Date;
}

/** What every long-lived part returns, so shutdown can stop them in reverse order. */
export interface Closable {
  close(): Promise<void>;
}
