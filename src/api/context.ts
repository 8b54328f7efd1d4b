import type { IncomingMessage } from "node:http";
import type { TRPCError } from "@trpc/server";
import type { TRPCRequestInfo } from "@trpc/server/http";
import type { WebSocket } from "ws";
import type { Principal } from "../auth/tokens.js";
import { closeAtExpiry } from "../token-expiry.js";
import type { TokenConnections } from "../token-connections.js";
import { tooManyConnections, type SocketBudget } from "./connection-limits.js";
import type { SocketCalls } from "./socket-calls.js";
import type { ApiServices, Context } from "./trpc.js";

const bearer = (header: string | undefined): string | null => {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match ? match[1] : null;
};

/**
 * Contexts for both doors of /trpc. A missing or bad token is not an error here: the
 * procedure decides (UNAUTHORIZED), so one refused call never tears down a WebSocket.
 */
export function createContextFactory(services: ApiServices, connections: TokenConnections, socketCalls: SocketCalls) {
  const principalOf = async (token: string | null | undefined): Promise<Principal | null> =>
    token ? services.auth.verify(token).catch(() => null) : null;
  const { limits } = services.config;

  return {
    /**
     * HTTP: `Authorization: Bearer <token>`, or tRPC's `connectionParams: { token }`, which an
     * event stream carries in its URL (a browser's EventSource cannot set a header). A stream
     * takes a slot of the token's connections while it runs (see `streamed` in trpc.ts).
     */
    http: async ({ req, info }: { req: IncomingMessage; info?: Pick<TRPCRequestInfo, "connectionParams"> }): Promise<Context> => {
      const token = bearer(req.headers.authorization) ?? info?.connectionParams?.token ?? null;
      return {
        services,
        principal: await principalOf(token),
        socket: null,
        takeConnection: () => (token ? connections.take(token) : null),
        tooManyConnections: () => tooManyConnections(connections),
      };
    },
    /** Both doors: unexpected failures go to the log (clients see only "internal error"). */
    onError: ({ error, path }: { error: TRPCError; path?: string }) => {
      if (error.code === "INTERNAL_SERVER_ERROR") services.logger.error({ err: error.cause ?? error, path }, "tRPC procedure failed");
    },
    /**
     * WebSocket: the client's `connectionParams: { token }`, sent once per connection. The
     * token is checked once, so the socket is closed when it expires; and a token holds a
     * bounded number of sockets (calls on one more are refused, it costs nothing else).
     */
    ws: async ({ res, info }: { res: WebSocket; info: Pick<TRPCRequestInfo, "connectionParams" | "signal"> }): Promise<Context> => {
      const token = info.connectionParams?.token;
      const principal = await principalOf(token);
      const socket: SocketBudget = { subscriptions: 0, maxSubscriptions: limits.maxSubscriptionsPerConnection, refusal: null, calls: socketCalls };
      if (principal && token && !info.signal.aborted) {
        const release = connections.take(token);
        if (release) info.signal.addEventListener("abort", release, { once: true });
        else socket.refusal = tooManyConnections(connections);
        res.on("close", closeAtExpiry(res, principal.expiresAt));
      }
      // The socket itself holds the token's slot: its streams take none of their own.
      return { services, principal, socket, takeConnection: () => () => {}, tooManyConnections: () => tooManyConnections(connections) };
    },
  };
}
