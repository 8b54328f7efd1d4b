import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { defaultDrainPolicy, type DrainPolicy } from "./domain/index.js";
import { StartupError } from "./exit-codes.js";

/** The settings of one server, validated; built by `loadConfig`. */
export interface Config {
  host: string;
  port: number;
  /** Embedded default: PGlite files and the generated secret live here. */
  dataDir: string;
  /** postgresql://… runs on PostgreSQL instead of the embedded PGlite. */
  databaseUrl: string | null;
  /** At start, how long an unreachable database is retried (with backoff) before giving up. */
  databaseWaitMs: number;
  /** redis://… shares events and documents between instances. */
  redisUrl: string | null;
  /** HS256 secret for tokens. */
  secret: string;
  /** Retries, backoff and the dispatch timeout. */
  drainPolicy: DrainPolicy;
  /** The slow periodic safety sweep of the drain reactor. */
  sweepIntervalMs: number;
  /** Unload a document this long after its last client left. */
  docIdleMs: number;
  /** Per-item window over which Yjs text edits are coalesced into one command. */
  editCoalesceMs: number;
  /** An item typed into by a device whose presence names it is not claimed until this long after its last keystroke (at least half of it). */
  editLockMs: number;
  /** Largest awareness state (presence JSON) one collab client may share, in bytes. */
  maxAwarenessBytes: number;
  /** Every /yjs connection is pinged this often; one that did not answer the last ping is ended. */
  collabPingMs: number;
  /** Bounds of the work one request, connection or token may cause. */
  limits: Limits;
  /** Browser origins allowed to call the API doors from other sites ("*" for any). */
  corsOrigins: string[];
  logLevel: string;
}

export interface Limits {
  /** Largest tRPC HTTP body or WebSocket message, in bytes. */
  maxBodyBytes: number;
  /** Most calls in one tRPC batch. */
  maxBatchSize: number;
  /** Open subscriptions on one tRPC WebSocket. */
  maxSubscriptionsPerConnection: number;
  /** tRPC WebSockets in use by one token at once (on this instance). */
  maxConnectionsPerToken: number;
}

/**
 * Every setting once: its environment variable, its `turnqueue serve` flag and what it means.
 * The CLI builds its options from this table, so flags and env can never drift apart.
 */
export const settings = {
  host: { env: "TURNQUEUE_HOST", flag: "--host <host>", help: "interface to listen on (default 127.0.0.1)" },
  port: { env: "TURNQUEUE_PORT", flag: "--port <port>", help: "port to listen on, 0 for any free port (default 4780)" },
  dataDir: { env: "TURNQUEUE_DATA_DIR", flag: "--data-dir <dir>", help: "embedded database and generated secret (default ./.turnqueue)" },
  databaseUrl: { env: "DATABASE_URL", flag: "--database-url <url>", help: "postgresql://… to run on PostgreSQL instead of the embedded PGlite" },
  databaseWaitMs: { env: "TURNQUEUE_DATABASE_WAIT_MS", flag: "--database-wait-ms <ms>", help: "at start, keep retrying an unreachable database this long before giving up (default 30000)" },
  redisUrl: { env: "REDIS_URL", flag: "--redis-url <url>", help: "redis://… to share events and documents between instances" },
  secret: { env: "TURNQUEUE_SECRET", flag: "--secret <secret>", help: "token signing secret, 32+ characters (default: generated into <data-dir>/secret)" },
  dispatchTimeoutMs: { env: "TURNQUEUE_DISPATCH_TIMEOUT_MS", flag: "--dispatch-timeout-ms <ms>", help: `an item with no turn started after this fails with "timeout" (default ${defaultDrainPolicy.dispatchTimeoutMs})` },
  maxQueueItems: { env: "TURNQUEUE_MAX_QUEUE_ITEMS", flag: "--max-queue-items <n>", help: `items a thread holds at most; one more is refused QUEUE_FULL (default ${defaultDrainPolicy.maxQueueItems})` },
  maxAttempts: { env: "TURNQUEUE_MAX_ATTEMPTS", flag: "--max-attempts <n>", help: `start attempts before a retryable failure holds the queue (default ${defaultDrainPolicy.maxAttempts})` },
  retryBaseMs: { env: "TURNQUEUE_RETRY_BASE_MS", flag: "--retry-base-ms <ms>", help: `first retry backoff (default ${defaultDrainPolicy.retryBaseMs})` },
  retryMaxMs: { env: "TURNQUEUE_RETRY_MAX_MS", flag: "--retry-max-ms <ms>", help: `longest retry backoff (default ${defaultDrainPolicy.retryMaxMs})` },
  sweepIntervalMs: { env: "TURNQUEUE_SWEEP_INTERVAL_MS", flag: "--sweep-interval-ms <ms>", help: "periodic drain safety sweep (default 30000)" },
  docIdleMs: { env: "TURNQUEUE_DOC_IDLE_MS", flag: "--doc-idle-ms <ms>", help: "unload a document this long after its last client left (default 30000)" },
  editCoalesceMs: { env: "TURNQUEUE_EDIT_COALESCE_MS", flag: "--edit-coalesce-ms <ms>", help: "window over which text edits become one command (default 300)" },
  editLockMs: { env: "TURNQUEUE_EDIT_LOCK_MS", flag: "--edit-lock-ms <ms>", help: "an item someone is typing into waits this long after the last keystroke before it is sent (default 3000)" },
  collabPingMs: { env: "TURNQUEUE_COLLAB_PING_MS", flag: "--collab-ping-ms <ms>", help: "ping every /yjs connection this often; one that did not answer the last ping is ended and its presence removed (default 30000)" },
  maxAwarenessBytes: { env: "TURNQUEUE_MAX_AWARENESS_BYTES", flag: "--max-awareness-bytes <bytes>", help: "largest presence (awareness state) one collab client may share; larger closes it (default 16384)" },
  maxBodyBytes: { env: "TURNQUEUE_MAX_BODY_BYTES", flag: "--max-body-bytes <bytes>", help: "largest tRPC request: HTTP body or WebSocket message; more is refused with 413 (default 4 MiB, at least 64 KiB: the SDK sends up to 60 KiB in one WebSocket message)" },
  maxBatchSize: { env: "TURNQUEUE_MAX_BATCH_SIZE", flag: "--max-batch-size <n>", help: "most calls in one tRPC batch, over HTTP or WebSocket (default 64)" },
  maxSubscriptionsPerConnection: { env: "TURNQUEUE_MAX_SUBSCRIPTIONS_PER_CONNECTION", flag: "--max-subscriptions-per-connection <n>", help: "open subscriptions on one tRPC WebSocket; more are refused with TOO_MANY_REQUESTS (default 100)" },
  maxConnectionsPerToken: { env: "TURNQUEUE_MAX_CONNECTIONS_PER_TOKEN", flag: "--max-connections-per-token <n>", help: "connections one token may hold at once, per instance, across doors (tRPC WebSockets and event streams, /yjs sockets); one more is refused: TOO_MANY_REQUESTS, or 429 on /yjs (default 50)" },
  logLevel: { env: "TURNQUEUE_LOG_LEVEL", flag: "--log-level <level>", help: "fatal|error|warn|info|debug|trace|silent (default info)" },
  corsOrigin: { env: "TURNQUEUE_CORS_ORIGIN", flag: "--cors-origin <origins>", help: "comma-separated browser origins (https://app.example) allowed to call /trpc and /api/v1, or * (default: none)" },
} as const;

export type SettingName = keyof typeof settings;
/** Raw values as they come from flags or the environment (strings), by setting name. */
export type RawSettings = Partial<Record<SettingName, string | undefined>>;

/** What one request, connection or token may cost by default (each has its setting above). */
export const defaultLimits: Limits = {
  maxBodyBytes: 4 << 20,
  maxBatchSize: 64,
  maxSubscriptionsPerConnection: 100,
  maxConnectionsPerToken: 50,
};

const millis = (fallback: number) => z.coerce.number().int().min(1).max(86_400_000).default(fallback);

const SettingsSchema = z.object({
  host: z.string().min(1).default("127.0.0.1"),
  port: z.coerce.number().int().min(0).max(65_535).default(4780),
  dataDir: z.string().min(1).default(".turnqueue"),
  databaseUrl: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgresql:// URL")
    .refine((url) => URL.canParse(url), "is not a valid URL")
    .nullable()
    .default(null),
  redisUrl: z
    .string()
    .regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")
    .refine((url) => URL.canParse(url), "is not a valid URL")
    .nullable()
    .default(null),
  secret: z.string().min(32, "must be at least 32 characters").nullable().default(null),
  databaseWaitMs: z.coerce.number().int().min(0).max(3_600_000).default(30_000),
  dispatchTimeoutMs: millis(defaultDrainPolicy.dispatchTimeoutMs),
  maxQueueItems: z.coerce.number().int().min(1).max(1_000_000).default(defaultDrainPolicy.maxQueueItems),
  maxAttempts: z.coerce.number().int().min(1).max(100).default(defaultDrainPolicy.maxAttempts),
  retryBaseMs: millis(defaultDrainPolicy.retryBaseMs),
  retryMaxMs: millis(defaultDrainPolicy.retryMaxMs),
  sweepIntervalMs: millis(30_000),
  docIdleMs: millis(30_000),
  editCoalesceMs: z.coerce.number().int().min(0).max(60_000).default(300),
  editLockMs: z.coerce.number().int().min(100).max(60_000).default(3_000),
  maxAwarenessBytes: z.coerce.number().int().min(256).max(1 << 20).default(16_384),
  collabPingMs: millis(30_000),
  // The SDK puts up to 60 KiB of calls in one WebSocket message (client/calls-link.ts); one over
  // the limit would close the socket and fail every call in flight on it.
  maxBodyBytes: z.coerce.number().int().min(64 * 1024).max(1 << 30).default(defaultLimits.maxBodyBytes),
  maxBatchSize: z.coerce.number().int().min(1).max(10_000).default(defaultLimits.maxBatchSize),
  maxSubscriptionsPerConnection: z.coerce.number().int().min(1).max(100_000).default(defaultLimits.maxSubscriptionsPerConnection),
  maxConnectionsPerToken: z.coerce.number().int().min(1).max(100_000).default(defaultLimits.maxConnectionsPerToken),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  corsOrigin: z
    .string()
    .transform((list) => list.split(",").map((o) => o.trim()).filter(Boolean))
    .refine((origins) => origins.every((o) => o === "*" || (URL.canParse(o) && new URL(o).origin === o)), "must list origins such as https://app.example (scheme, host, port; no path), or *")
    .default([]),
});

/** Settings whose values are never repeated in a message (a log may keep what a terminal showed). */
const SENSITIVE: ReadonlySet<SettingName> = new Set(["secret"]);

/** A setting's value as a message may show it: secrets by length, URLs without their password. */
export function shown(name: SettingName, value: string | undefined): string {
  if (value === undefined) return "nothing";
  if (SENSITIVE.has(name)) return `a value of ${value.length} characters`;
  return JSON.stringify(withoutPassword(value));
}

/** postgresql://user:pw@host → postgresql://user:***@host: a URL may be printed, its password not. */
export const withoutPassword = (text: string): string => text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^/:@\s]*:)[^@\s/]*@/gi, "$1***@");

/** `--port / TURNQUEUE_PORT`: how every message names a setting. */
export const named = (name: SettingName): string => `${settings[name].flag.split(" ")[0]} / ${settings[name].env}`;

/** A setting had a bad value; the message names the flag and variable to fix. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    // One problem reads as one line; several as a list under one heading.
    super(problems.length === 1 ? problems[0]! : `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Environment variables as raw settings; empty strings count as unset. */
export function settingsFromEnv(env: NodeJS.ProcessEnv): RawSettings {
  const raw: RawSettings = {};
  for (const [name, setting] of Object.entries(settings) as [SettingName, (typeof settings)[SettingName]][]) {
    const value = env[setting.env];
    if (value !== undefined && value !== "") raw[name] = value;
  }
  return raw;
}

/**
 * Builds the Config: flags win over the environment, which wins over defaults. Without
 * TURNQUEUE_SECRET the secret is generated once into `<dataDir>/secret` (mode 0600), so
 * tokens survive restarts.
 */
export async function loadConfig(
  input: {
    flags?: RawSettings;
    env?: NodeJS.ProcessEnv;
    /** Without TURNQUEUE_SECRET, generate `<dataDir>/secret` when missing (default true; `token` says false). */
    createSecret?: boolean;
  } = {},
): Promise<Config & { secretSource: string }> {
  const raw = { ...settingsFromEnv(input.env ?? process.env), ...definedOnly(input.flags ?? {}) };
  const parsed = SettingsSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = issue.path[0] as SettingName;
        const setting = settings[name];
        const where = setting ? named(name) : String(name);
        return `${where}: ${issue.message} (got ${setting ? shown(name, raw[name]) : "?"})`;
      }),
    );
  }
  const s = parsed.data;
  if (s.retryMaxMs < s.retryBaseMs) {
    throw new ConfigError([`--retry-max-ms / TURNQUEUE_RETRY_MAX_MS (${s.retryMaxMs}) must not be below --retry-base-ms (${s.retryBaseMs})`]);
  }
  if (s.redisUrl && !s.databaseUrl) {
    throw new ConfigError([
      `${named("redisUrl")} is set without ${named("databaseUrl")}: instances sharing Redis need one shared PostgreSQL database ` +
        "(the embedded PGlite is one process only). Set DATABASE_URL to a postgresql:// server, or unset REDIS_URL.",
    ]);
  }
  const dataDir = path.resolve(s.dataDir);
  const secret = s.secret
    ? { value: s.secret, source: input.flags?.secret ? "--secret" : settings.secret.env }
    : await storedSecret(dataDir, input.createSecret ?? true);
  return {
    host: s.host,
    port: s.port,
    dataDir,
    databaseUrl: s.databaseUrl,
    redisUrl: s.redisUrl,
    secret: secret.value,
    secretSource: secret.source,
    databaseWaitMs: s.databaseWaitMs,
    drainPolicy: { maxQueueItems: s.maxQueueItems, maxAttempts: s.maxAttempts, retryBaseMs: s.retryBaseMs, retryMaxMs: s.retryMaxMs, dispatchTimeoutMs: s.dispatchTimeoutMs },
    sweepIntervalMs: s.sweepIntervalMs,
    docIdleMs: s.docIdleMs,
    editCoalesceMs: s.editCoalesceMs,
    editLockMs: s.editLockMs,
    maxAwarenessBytes: s.maxAwarenessBytes,
    collabPingMs: s.collabPingMs,
    limits: {
      maxBodyBytes: s.maxBodyBytes,
      maxBatchSize: s.maxBatchSize,
      maxSubscriptionsPerConnection: s.maxSubscriptionsPerConnection,
      maxConnectionsPerToken: s.maxConnectionsPerToken,
    },
    logLevel: s.logLevel,
    corsOrigins: s.corsOrigin,
  };
}

const definedOnly = (raw: RawSettings): RawSettings =>
  Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));

/**
 * Reads `<dataDir>/secret`, creating it first if asked; `wx` makes two racing processes agree.
 * `source` names the file, never the value.
 */
async function storedSecret(dataDir: string, create: boolean): Promise<{ value: string; source: string }> {
  const file = path.join(dataDir, "secret");
  if (create) {
    try {
      await mkdir(dataDir, { recursive: true });
      await writeFile(file, randomBytes(32).toString("base64url"), { mode: 0o600, flag: "wx" });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw dataDirError(dataDir, error);
    }
  }
  let secret: string;
  try {
    secret = (await readFile(file, "utf8")).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw dataDirError(dataDir, error);
    throw new StartupError(
      "noSecret",
      `no secret in ${file}: run where the server keeps its data (--data-dir / TURNQUEUE_DATA_DIR), set ${settings.secret.env}, ` +
        "or pass --create-secret to make a new one (tokens it signs work only on a server using that secret)",
    );
  }
  if (secret.length < 32) throw new ConfigError([`${file}: the stored secret is shorter than 32 characters; delete the file to generate a new one`]);
  return { value: secret, source: file };
}

/** The data directory could not be created, written or read: which one, and what to do. */
export function dataDirError(dataDir: string, error: unknown): StartupError {
  const code = (error as NodeJS.ErrnoException).code ?? "error";
  return new StartupError(
    "dataDirUnusable",
    `the data directory ${dataDir} is not usable (${code}): give this user write access to it, or choose another with ${named("dataDir")}`,
    { cause: error },
  );
}
