/**
 * Sizes the queue's rules bound, as plain constants: the SDK checks against them before it
 * sends, without loading the schemas (and zod) that enforce them on the server.
 */

/** An item's text, in characters (UTF-16 code units, as JavaScript counts them). */
export const MAX_TEXT_LENGTH = 100_000;
