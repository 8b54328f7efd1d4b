import { WebSocket } from "ws";
import type { Principal } from "../auth/tokens.js";

/** RFC 6455: a close reason is at most 123 bytes of UTF-8. */
const MAX_REASON_BYTES = 123;

/**
 * One y-websocket connection. It is also the origin of the Yjs transactions and awareness
 * changes its messages cause: that is how the server tells a client's writes from its own.
 */
export class Client {
  /** Awareness client ids this connection announced, removed for everyone when it closes. */
  readonly awarenessIds = new Set<number>();
  readonly actor: string;
  /**
   * A `viewer`: its document writes are undone as they arrive (the connection stays open:
   * a provider would only resend them on reconnect). Its presence is relayed like anyone's.
   */
  readonly readOnly: boolean;
  /**
   * The state vector of the connection's last sync request: what the device's replica held
   * when it (re)connected. Its catch-up (the sync step 2 that follows) was made on no more.
   */
  stateAtSync: Map<number, number> | null = null;
  private alive = true;

  constructor(
    readonly ws: WebSocket,
    readonly principal: Principal,
  ) {
    this.actor = `collab:${principal.sub}`;
    this.readOnly = principal.role === "viewer";
    ws.on("pong", () => (this.alive = true));
  }

  /**
   * Called every `collabPingMs` by one timer for all connections (a timer per connection
   * is memory each holds): ends a connection that did not answer the last ping, pings the rest.
   */
  heartbeat(): void {
    if (!this.alive) return void this.ws.terminate();
    this.alive = false;
    this.ws.ping();
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(message: Uint8Array): void {
    if (!this.open) return;
    // A failed send means the socket is going away; its close handler does the cleanup.
    this.ws.send(message, (error) => error && this.ws.terminate());
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState === WebSocket.CLOSED || this.ws.readyState === WebSocket.CLOSING) return;
    this.ws.close(code, truncate(reason));
  }
}

function truncate(reason: string): string {
  let out = reason;
  while (Buffer.byteLength(out) > MAX_REASON_BYTES) out = out.slice(0, -1);
  return out;
}
