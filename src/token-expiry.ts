import { WebSocket } from "ws";

/**
 * How a long-lived connection ends when the token it was opened with expires: a close code
 * in y-websocket's "try again" range (4500–4599, while 4400–4499 mean "do not reconnect"),
 * because reconnecting with a fresh token is exactly the fix. Both WebSocket doors use it.
 */
export const TOKEN_EXPIRED = { code: 4501, reason: "token expired: reconnect with a fresh token" } as const;

/** setTimeout holds at most 2^31-1 ms (about 24.8 days); longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** True once the token's time is up (by the system clock, the one token verification reads). */
export const isExpired = (principal: { expiresAt?: number | null }): boolean =>
  principal.expiresAt != null && Date.now() >= principal.expiresAt;

/** The cancel of a token that never expires: one function for all of them, not a closure per connection. */
const NEVER = () => {};

/**
 * Calls `expired` once `expiresAt` passes (at once if it has); the function returned cancels
 * it. Tokens without expiry never expire. The timer does not keep the process alive.
 */
export function atExpiry(expiresAt: number | null | undefined, expired: () => void): () => void {
  if (expiresAt == null) return NEVER;
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const arm = () => {
    if (cancelled) return;
    const left = expiresAt - Date.now();
    if (left <= 0) return expired();
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return () => {
    cancelled = true;
    clearTimeout(timer);
  };
}

/**
 * Closes `ws` with TOKEN_EXPIRED when `expiresAt` passes: a token is checked once, when the
 * connection opens, so without this an expired token would keep streaming and writing for
 * as long as the socket lives. The caller's close handler calls the function returned.
 */
export function closeAtExpiry(ws: WebSocket, expiresAt: number | null | undefined): () => void {
  return atExpiry(expiresAt, () => {
    if (ws.readyState !== WebSocket.CLOSING && ws.readyState !== WebSocket.CLOSED) ws.close(TOKEN_EXPIRED.code, TOKEN_EXPIRED.reason);
  });
}
