import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { WebSocket } from "ws";

/**
 * Every stream a door serves gets an 'error' listener. An EventEmitter that emits 'error'
 * with no listener throws, and for a socket that means one client's bad bytes end the
 * whole process for everyone.
 */

/** An upgraded TCP socket before (or instead of) its WebSocket: a failure just drops it. */
export function guardUpgradeSocket(socket: Duplex): void {
  socket.on("error", destroyItself);
}

// One listener for every socket (an emitter calls it with itself as `this`): a closure per
// connection is memory each open one holds.
function destroyItself(this: Duplex): void {
  this.destroy();
}

/**
 * The guard of a door's WebSockets, with one listener for all of them. A WebSocket errs when
 * its client broke the framing (unmasked, reserved bits or opcode, invalid UTF-8, a length
 * over the door's maximum). `ws` has already sent the close frame with the RFC 6455 code
 * (1002 protocol error, 1007 invalid data, 1009 too big) and stopped reading before it emits
 * the error; here it is only logged, without the request URL (it holds the token).
 */
export function webSocketGuard(logger: Logger, door: string): (ws: WebSocket) => void {
  const badFrame = (err: Error & { code?: string }) =>
    logger.warn({ door, error: err.code ?? err.name, reason: err.message }, "closed a WebSocket that sent a bad frame");
  return (ws) => void ws.on("error", badFrame);
}
