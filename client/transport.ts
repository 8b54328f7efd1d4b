import { createTRPCClient, createWSClient, httpBatchLink, httpLink, splitLink, wsLink, type TRPCClient } from "@trpc/client";
import WS from "ws";
import { callsLink } from "./calls-link.js";
import { sendNowLink } from "./send-now.js";
import type { AppRouter } from "./router-types.js";
import { staleAtOf, TokenSource, type TokenOption } from "./token.js";

export interface TransportOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:4780. */
  url: string;
  /**
   * A token from `turnqueue token` (its role decides which procedures answer), or a function
   * returning a fresh one, called again before the one held expires.
   */
  token: TokenOption | TokenSource;
  /** Each change of the WebSocket: open, or closed/failed with why (the client reconnects by itself). */
  onConnection?: (change: ConnectionChange) => void;
  /**
   * How queries and mutations travel. `socket`: over the client's WebSocket, opened at once
   * and kept (reconnecting by itself) until `close()`: a long-lived client's calls then cost
   * no HTTP request each. Calls go over HTTP while the socket is not open, and for what the
   * socket should not carry (a large input, a trace header). `http`: every call over HTTP,
   * batched; the socket opens only while something subscribes (a short-lived client: one
   * call and gone).
   */
  calls: "socket" | "http";
}

/** `open`: the socket connected; `ready`: the server accepted the token and streams (reported by runAgent); `down`: retrying. */
export type ConnectionChange = { state: "open" } | { state: "ready" } | { state: "down"; reason: string };

/** Calls per HTTP batch: below the server's default --max-batch-size (64). */
const BATCH_ITEMS = 32;

/**
 * The WebSocket class: the platform's own where there is one (browsers, Node 22), else `ws`.
 * A browser bundler resolves `ws` to its stub, which is then never called.
 */
export const WebSocketImpl: typeof globalThis.WebSocket = globalThis.WebSocket ?? (WS as unknown as typeof globalThis.WebSocket);

/** The typed tRPC client of the server's router, plus `close()` for its WebSocket. */
export type Transport = TRPCClient<AppRouter> & { close(): Promise<void> };

/**
 * One typed client for everything: queries and mutations over the WebSocket or HTTP (see
 * `calls`), subscriptions over the WebSocket, which reconnects by itself (tRPC resubscribes
 * with the last tracked id, so resumable streams continue where they stopped).
 */
export function createTransport({ url, token, onConnection, calls }: TransportOptions): Transport {
  const base = url.replace(/\/+$/, "");
  const tokens = TokenSource.from(token);
  /** When the token the socket was last opened with is about to expire (null: never). */
  let socketStaleAt: number | null = null;
  const ws = createWSClient({
    url: `${base.replace(/^http/, "ws")}/trpc`,
    // Read at every (re)connect: the server closes a socket when its token expires, and the
    // reconnect (which resumes every subscription where it stopped) brings a fresh one.
    connectionParams: async () => {
      const fresh = await tokens.get();
      socketStaleAt = staleAtOf(fresh);
      return { token: fresh };
    },
    WebSocket: WebSocketImpl,
    retryDelayMs: (attempt) => Math.min(5_000, 100 * 2 ** attempt),
    // Calls over HTTP: no socket until something subscribes, closed 10 s after the last stops.
    lazy: { enabled: calls === "http", closeMs: 10_000 },
    // A server that vanished without closing the socket (a cut network) is noticed too.
    keepAlive: { enabled: true, intervalMs: 10_000, pongTimeoutMs: 5_000 },
    ...(onConnection && {
      onOpen: () => onConnection({ state: "open" }),
      onError: (event?: Event) => onConnection({ state: "down", reason: reasonOf(event) }),
      onClose: (cause?: { code?: number }) => onConnection({ state: "down", reason: `closed${cause?.code ? ` (${cause.code})` : ""}` }),
    }),
  });
  const client = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === "subscription",
        true: wsLink({ client: ws }),
        false: callsLink({
          socket: sendNowLink(ws, wsLink({ client: ws })),
          // A call carrying a trace context (a report on a traced dispatch) goes alone, with its `traceparent` header.
          traced: httpLink({
            url: `${base}/trpc`,
            headers: async ({ op }) => ({ authorization: `Bearer ${await tokens.get()}`, traceparent: op.context.traceparent as string }),
          }),
          http: httpBatchLink({
            url: `${base}/trpc`,
            maxItems: BATCH_ITEMS,
            headers: async () => ({ authorization: `Bearer ${await tokens.get()}` }),
          }),
          // The server refuses calls on a socket whose token expired (and closes it then):
          // from a margin before that, calls go over HTTP with a fresh token until it reconnects.
          socketReady: () =>
            calls === "socket" && ws.connection?.state === "open" && (socketStaleAt === null || Date.now() < socketStaleAt),
        }),
      }),
    ],
  });
  const close = () => ws.close();
  // The tRPC client is a proxy that answers every property with a procedure path, so
  // `close` is added by a proxy in front of it rather than assigned onto it.
  return new Proxy(client, {
    get: (target, property, receiver) => (property === "close" ? close : Reflect.get(target, property, receiver)),
  }) as Transport;
}

/** What a WebSocket error event says: ws and undici put the socket error in different places. */
function reasonOf(event: Event | undefined): string {
  const e = event as (Event & { error?: { code?: string; message?: string }; message?: string }) | undefined;
  return e?.error?.code ?? e?.error?.message ?? e?.message ?? "connection failed";
}
