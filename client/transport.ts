import { createTRPCClient, createWSClient, httpBatchLink, splitLink, wsLink, type TRPCClient } from "@trpc/client";
import WS from "ws";
import type { AppRouter } from "./router-types.js";

export interface TransportOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:4780. */
  url: string;
  /** A token from `turnqueue token`; its role decides which procedures answer. */
  token: string;
}

/**
 * The WebSocket class: the platform's own where there is one (browsers, Node 22), else `ws`.
 * A browser bundler resolves `ws` to its stub, which is then never called.
 */
export const WebSocketImpl: typeof globalThis.WebSocket = globalThis.WebSocket ?? (WS as unknown as typeof globalThis.WebSocket);

/** The typed tRPC client of the server's router, plus `close()` for its WebSocket. */
export type Transport = TRPCClient<AppRouter> & { close(): Promise<void> };

/**
 * One typed client for everything: queries and mutations over HTTP, subscriptions over a
 * WebSocket that reconnects by itself (tRPC resubscribes with the last tracked id, so
 * resumable streams continue where they stopped).
 */
export function createTransport({ url, token }: TransportOptions): Transport {
  const base = url.replace(/\/+$/, "");
  const ws = createWSClient({
    url: `${base.replace(/^http/, "ws")}/trpc`,
    connectionParams: { token },
    WebSocket: WebSocketImpl,
    retryDelayMs: (attempt) => Math.min(5_000, 100 * 2 ** attempt),
    // No socket until something subscribes (plain HTTP users never open one).
    lazy: { enabled: true, closeMs: 10_000 },
    // A server that vanished without closing the socket (a cut network) is noticed too.
    keepAlive: { enabled: true, intervalMs: 10_000, pongTimeoutMs: 5_000 },
  });
  const client = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === "subscription",
        true: wsLink({ client: ws }),
        false: httpBatchLink({ url: `${base}/trpc`, headers: { authorization: `Bearer ${token}` } }),
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
