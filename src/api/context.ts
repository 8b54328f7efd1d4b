import type { IncomingMessage } from "node:http";
import type { TRPCError } from "@trpc/server";
import type { TRPCRequestInfo } from "@trpc/server/http";
import type { Principal } from "../auth/tokens.js";
import type { ApiServices, Context } from "./trpc.js";

const bearer = (header: string | undefined): string | null => {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match ? match[1] : null;
};

/**
 * Contexts for both doors of /trpc. A missing or bad token is not an error here: the
 * procedure decides (UNAUTHORIZED), so one refused call never tears down a WebSocket.
 */
export function createContextFactory(services: ApiServices) {
  const principalOf = async (token: string | null | undefined): Promise<Principal | null> =>
    token ? services.auth.verify(token).catch(() => null) : null;

  return {
    /** HTTP: `Authorization: Bearer <token>`. */
    http: async ({ req }: { req: IncomingMessage }): Promise<Context> => ({
      services,
      principal: await principalOf(bearer(req.headers.authorization)),
    }),
    /** Both doors: unexpected failures go to the log (clients see only "internal error"). */
    onError: ({ error, path }: { error: TRPCError; path?: string }) => {
      if (error.code === "INTERNAL_SERVER_ERROR") services.logger.error({ err: error.cause ?? error, path }, "tRPC procedure failed");
    },
    /** WebSocket: the client's `connectionParams: { token }`, sent once per connection. */
    ws: async ({ info }: { info: Pick<TRPCRequestInfo, "connectionParams"> }): Promise<Context> => ({
      services,
      principal: await principalOf(info.connectionParams?.token),
    }),
  };
}
