import { StoreUnavailableError } from "./types.js";

/** Node socket errors and PostgreSQL SQLSTATEs that mean "the database is not there right now". */
const SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"]);
// 08: connection exception; 57P01-03: admin shutdown / crash shutdown / cannot connect now;
// 53300: too many connections. Prisma's own codes for the same situations: P1001/P1002/P1017.
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123]|53300)$/;
const PRISMA_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024"]);
// SQLSTATE 55000 is too broad to treat as an outage; its "closed to connections" form is one.
const MESSAGES = /Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect|Cannot use a pool after calling end|Client was closed|PGlite is closed|does not allow connections|is not currently accepting connections/i;

function* causes(error: unknown): Generator<unknown> {
  for (let e = error, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    yield e;
    const original = (e as { originalError?: unknown }).originalError;
    if (original) yield original;
  }
}

export function isUnavailable(error: unknown): boolean {
  if (error instanceof StoreUnavailableError) return true;
  for (const e of causes(error)) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (SOCKET_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code) || PRISMA_CODES.has(code))) return true;
    if (e instanceof Error && MESSAGES.test(e.message)) return true;
  }
  return false;
}

/** The constraint a unique violation (SQLSTATE 23505) hit, or null for any other error. */
export function uniqueViolation(error: unknown): string | null {
  for (const e of causes(error)) {
    if ((e as { code?: unknown }).code === "23505") return String((e as { constraint?: unknown }).constraint ?? "");
  }
  return null;
}

/** Rethrows connection failures as StoreUnavailableError (retryable); anything else as is. */
export function translate(error: unknown): never {
  if (error instanceof StoreUnavailableError) throw error;
  if (isUnavailable(error)) throw new StoreUnavailableError(`database unavailable: ${(error as Error)?.message ?? error}`, { cause: error });
  throw error;
}

export async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    return translate(error);
  }
}
