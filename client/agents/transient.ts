/**
 * Whether an agent's error text tells of something that passes with time: an HTTP 429 or 5xx,
 * a rate or usage limit, overload, or the network (the model unreachable, the connection
 * dropped). For errors that come as text only (every ACP agent; Codex's `other` kind).
 */
const TRANSIENT =
  /\b(429|500|502|503|504|529)\b|rate.?limit|usage.?limit|overload|unavailable|ECONNREFUSED|ECONNRESET|ETIMEDOUT|timed? ?out|stream disconnected|error sending request|connection (refused|reset|closed)/i;

export const looksTransient = (message: string): boolean => TRANSIENT.test(message);
