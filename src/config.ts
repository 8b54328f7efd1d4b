import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { defaultDrainPolicy } from "./domain/index.js";
import type { Config } from "./services.js";

/**
 * Every setting once: its environment variable, its `turnqueue serve` flag and what it means.
 * The CLI builds its options from this table, so flags and env can never drift apart.
 */
export const settings = {
  host: { env: "TURNQUEUE_HOST", flag: "--host <host>", help: "interface to listen on (default 127.0.0.1)" },
  port: { env: "TURNQUEUE_PORT", flag: "--port <port>", help: "port to listen on, 0 for any free port (default 4780)" },
  dataDir: { env: "TURNQUEUE_DATA_DIR", flag: "--data-dir <dir>", help: "embedded database and generated secret (default ./.turnqueue)" },
  databaseUrl: { env: "DATABASE_URL", flag: "--database-url <url>", help: "postgresql://… to run on PostgreSQL instead of the embedded PGlite" },
  redisUrl: { env: "REDIS_URL", flag: "--redis-url <url>", help: "redis://… to share events and documents between instances" },
  secret: { env: "TURNQUEUE_SECRET", flag: "--secret <secret>", help: "token signing secret, 32+ characters (default: generated into <data-dir>/secret)" },
  dispatchTimeoutMs: { env: "TURNQUEUE_DISPATCH_TIMEOUT_MS", flag: "--dispatch-timeout-ms <ms>", help: "an item with no turn started after this fails with \"timeout\" (default 60000)" },
  maxAttempts: { env: "TURNQUEUE_MAX_ATTEMPTS", flag: "--max-attempts <n>", help: `start attempts before a retryable failure holds the queue (default ${defaultDrainPolicy.maxAttempts})` },
  retryBaseMs: { env: "TURNQUEUE_RETRY_BASE_MS", flag: "--retry-base-ms <ms>", help: `first retry backoff (default ${defaultDrainPolicy.retryBaseMs})` },
  retryMaxMs: { env: "TURNQUEUE_RETRY_MAX_MS", flag: "--retry-max-ms <ms>", help: `longest retry backoff (default ${defaultDrainPolicy.retryMaxMs})` },
  sweepIntervalMs: { env: "TURNQUEUE_SWEEP_INTERVAL_MS", flag: "--sweep-interval-ms <ms>", help: "periodic drain safety sweep (default 30000)" },
  docIdleMs: { env: "TURNQUEUE_DOC_IDLE_MS", flag: "--doc-idle-ms <ms>", help: "unload a document this long after its last client left (default 30000)" },
  editCoalesceMs: { env: "TURNQUEUE_EDIT_COALESCE_MS", flag: "--edit-coalesce-ms <ms>", help: "window over which text edits become one command (default 300)" },
  logLevel: { env: "TURNQUEUE_LOG_LEVEL", flag: "--log-level <level>", help: "fatal|error|warn|info|debug|trace|silent (default info)" },
  corsOrigin: { env: "TURNQUEUE_CORS_ORIGIN", flag: "--cors-origin <origins>", help: "comma-separated browser origins (https://app.example) allowed to call /trpc and /api/v1, or * (default: none)" },
} as const;

export type SettingName = keyof typeof settings;
/** Raw values as they come from flags or the environment (strings), by setting name. */
export type RawSettings = Partial<Record<SettingName, string | undefined>>;

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
  dispatchTimeoutMs: millis(60_000),
  maxAttempts: z.coerce.number().int().min(1).max(100).default(defaultDrainPolicy.maxAttempts),
  retryBaseMs: millis(defaultDrainPolicy.retryBaseMs),
  retryMaxMs: millis(defaultDrainPolicy.retryMaxMs),
  sweepIntervalMs: millis(30_000),
  docIdleMs: millis(30_000),
  editCoalesceMs: z.coerce.number().int().min(0).max(60_000).default(300),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  corsOrigin: z
    .string()
    .transform((list) => list.split(",").map((o) => o.trim()).filter(Boolean))
    .refine((origins) => origins.every((o) => o === "*" || (URL.canParse(o) && new URL(o).origin === o)), "must list origins such as https://app.example (scheme, host, port; no path), or *")
    .default([]),
});

/** A setting had a bad value; the message names the flag and variable to fix. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
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
export async function loadConfig(input: { flags?: RawSettings; env?: NodeJS.ProcessEnv } = {}): Promise<Config> {
  const raw = { ...settingsFromEnv(input.env ?? process.env), ...definedOnly(input.flags ?? {}) };
  const parsed = SettingsSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = issue.path[0] as SettingName;
        const setting = settings[name];
        const where = setting ? `${setting.flag.split(" ")[0]} / ${setting.env}` : String(name);
        return `${where}: ${issue.message} (got ${JSON.stringify(raw[name])})`;
      }),
    );
  }
  const s = parsed.data;
  if (s.retryMaxMs < s.retryBaseMs) {
    throw new ConfigError([`--retry-max-ms / TURNQUEUE_RETRY_MAX_MS (${s.retryMaxMs}) must not be below --retry-base-ms (${s.retryBaseMs})`]);
  }
  const dataDir = path.resolve(s.dataDir);
  return {
    host: s.host,
    port: s.port,
    dataDir,
    databaseUrl: s.databaseUrl,
    redisUrl: s.redisUrl,
    secret: s.secret ?? (await persistentSecret(dataDir)),
    dispatchTimeoutMs: s.dispatchTimeoutMs,
    drainPolicy: { maxAttempts: s.maxAttempts, retryBaseMs: s.retryBaseMs, retryMaxMs: s.retryMaxMs },
    sweepIntervalMs: s.sweepIntervalMs,
    docIdleMs: s.docIdleMs,
    editCoalesceMs: s.editCoalesceMs,
    logLevel: s.logLevel,
    corsOrigins: s.corsOrigin,
  };
}

const definedOnly = (raw: RawSettings): RawSettings =>
  Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));

/** Reads `<dataDir>/secret`, creating it first if needed; `wx` makes two racing processes agree. */
async function persistentSecret(dataDir: string): Promise<string> {
  const file = path.join(dataDir, "secret");
  await mkdir(dataDir, { recursive: true });
  try {
    await writeFile(file, randomBytes(32).toString("base64url"), { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  const secret = (await readFile(file, "utf8")).trim();
  if (secret.length < 32) throw new ConfigError([`${file}: the stored secret is shorter than 32 characters; delete the file to generate a new one`]);
  return secret;
}
