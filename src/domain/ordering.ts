import { generateKeyBetween, generateNKeysBetween } from "fractional-indexing";

/**
 * Queue order: fractional keys compared as plain code-unit strings (never locale or
 * database collation), ties broken by item id so two devices writing the same key still
 * agree on one order.
 */
export const compareOrder = (
  a: { position: string; queueItemId: string },
  b: { position: string; queueItemId: string },
): number =>
  a.position < b.position ? -1 : a.position > b.position ? 1 : a.queueItemId < b.queueItemId ? -1 : a.queueItemId > b.queueItemId ? 1 : 0;

export const keyBetween = (before: string | null, after: string | null): string =>
  generateKeyBetween(before, after);

/** `count` ascending keys strictly between two keys (either may be null: open end). */
export const keysBetween = (before: string | null, after: string | null, count: number): string[] =>
  generateNKeysBetween(before, after, count);

/**
 * fractional-indexing validates a key's head, length and trailing digit, but not that its
 * digits are base-62: "a0!" passes, sorts before "a0", and the keys it then generates around
 * it land on the wrong side of it. Client-written (Yjs) keys must pass this as well.
 */
const BASE_62_KEY = /^[A-Za-z][0-9A-Za-z]*$/;

/** True when `key` is a key fractional-indexing itself could have produced. */
export function isValidPositionKey(key: string): boolean {
  if (!BASE_62_KEY.test(key)) return false;
  try {
    generateKeyBetween(key, null);
    return true;
  } catch {
    return false;
  }
}
