import type { Logger } from "pino";
import { dataDirError, named, withoutPassword } from "../config.js";
import type { Config } from "../config.js";
import { openDatabase, type Database } from "../store/database.js";
import { isUnavailable } from "../store/errors.js";
import { StartupError } from "../exit-codes.js";

const FIRST_RETRY_MS = 250;
const LONGEST_RETRY_MS = 5_000;

/** SQLSTATEs of a server that answered and said no: retrying will not change its mind. */
const REFUSALS: Record<string, string> = {
  "3D000": "the database does not exist: create it (e.g. `createdb`) or fix",
  "28P01": "the login was refused (password): fix the credentials in",
  "28000": "the login was refused: fix the user in, or allow it in pg_hba.conf for",
  "42501": "the user may not use this database: grant it, or fix",
};

/**
 * Opens the database, waiting for it at start: a server started beside its database (a
 * compose file, a reboot) usually comes up first. Unreachable is retried with backoff for
 * `databaseWaitMs`; a refusal (no such database, bad login) ends at once.
 */
export async function openDatabaseWaiting(config: Config, logger: Logger, sleep = defaultSleep): Promise<Database> {
  const where = config.databaseUrl ? withoutPassword(config.databaseUrl) : `PGlite in ${config.dataDir}`;
  const deadline = Date.now() + config.databaseWaitMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir }, { logger });
    } catch (error) {
      const refusal = refusalOf(error);
      if (refusal) {
        throw new StartupError("databaseRefused", `the database at ${where} refused: ${refusal} ${named("databaseUrl")}`, { cause: error });
      }
      if (!config.databaseUrl && fileSystemCode(error)) throw dataDirError(config.dataDir, error);
      if (!isUnavailable(error)) throw error;
      const wait = Math.min(LONGEST_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt);
      if (Date.now() + wait > deadline) {
        throw new StartupError(
          "databaseUnreachable",
          `cannot reach the database at ${where} (${reasonOf(error)}) after ${attempt + 1} attempts in ${Math.round(config.databaseWaitMs / 1000)} s: ` +
            `start it, or fix ${named("databaseUrl")}; ${named("databaseWaitMs")} sets how long to wait`,
          { cause: error },
        );
      }
      logger.warn({ database: where, attempt: attempt + 1, retryInMs: wait, reason: reasonOf(error) }, "database unreachable; retrying");
      await sleep(wait);
    }
  }
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function* chain(error: unknown): Generator<{ code?: unknown; message?: unknown }> {
  for (let e = error, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) yield e as { code?: unknown };
}

function refusalOf(error: unknown): string | null {
  for (const e of chain(error)) if (typeof e.code === "string" && REFUSALS[e.code]) return REFUSALS[e.code]!;
  return null;
}

function fileSystemCode(error: unknown): boolean {
  for (const e of chain(error)) if (typeof e.code === "string" && /^(EACCES|EPERM|EROFS|ENOTDIR|ENOSPC)$/.test(e.code)) return true;
  return false;
}

/** The innermost code or message, without any URL's password. */
function reasonOf(error: unknown): string {
  let reason = "unreachable";
  for (const e of chain(error)) {
    if (typeof e.code === "string") reason = e.code;
    else if (typeof e.message === "string" && reason === "unreachable") reason = e.message;
  }
  return withoutPassword(reason);
}
