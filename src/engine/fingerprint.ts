import { createHash } from "node:crypto";

/** Canonical JSON (object keys sorted), so the same command always hashes the same. */
const canonical = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
};

/** What tells a retried command (same fingerprint) from another one reusing its id. */
export const fingerprintOf = (command: unknown): string => createHash("sha256").update(canonical(command)).digest("hex");
