import { generateKeyBetween } from "fractional-indexing";

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

/** True when `key` is a key fractional-indexing itself could have produced. */
export function isValidPositionKey(key: string): boolean {
  try {
    generateKeyBetween(key, null);
    return true;
  } catch {
    return false;
  }
}
