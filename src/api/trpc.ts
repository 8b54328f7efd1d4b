import { initTRPC, TRPCError } from "@trpc/server";
import { z, ZodError } from "zod";
import type { Role } from "../domain/index.js";
import type { Principal } from "../auth/tokens.js";
import type { Logger } from "pino";
import type { Auth } from "../auth/tokens.js";
import type { Config } from "../config.js";
import type { Engine } from "../engine/types.js";
import type { EventStore } from "../store/types.js";
import { reasonOf, toTRPCError } from "./errors.js";

/** What the procedures use, wired once by the server. */
export interface ApiServices {
  engine: Engine;
  store: EventStore;
  auth: Pick<Auth, "verify">;
  logger: Logger;
  config: Pick<Config, "sweepIntervalMs">;
}

export interface Context {
  services: ApiServices;
  /** Null when the request carried no token or a token we did not sign. */
  principal: Principal | null;
}

// Plain JSON, no transformer: docs/contract.md promises clients in any language can call us.
const t = initTRPC.context<Context>().create({
  // Stack traces are for our logs, not for clients, whatever NODE_ENV says.
  isDev: false,
  errorFormatter({ shape, error }) {
    return {
      ...shape,
      // An unexpected failure's text may quote SQL or paths: clients get a plain word, our log the rest.
      message: error.code === "INTERNAL_SERVER_ERROR" ? "internal error" : shape.message,
      data: {
        ...shape.data,
        zodError: error.code === "BAD_REQUEST" && error.cause instanceof ZodError ? z.flattenError(error.cause) : null,
        reason: reasonOf(error),
      },
    };
  },
});

export const router = t.router;

/**
 * Domain refusals and store outages thrown anywhere below become their contract codes. A
 * middleware sees a failed `next()` as a result, not a throw, so the mapping happens here once.
 */
const mapErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok) {
    const mapped = toTRPCError(result.error.cause);
    if (mapped) throw mapped;
  }
  return result;
});

/** Which side of the protocol a procedure serves; also names the actor in the log. */
const side = (name: "user" | "agent", roles: readonly Role[]) =>
  t.middleware(({ ctx, next }) => {
    const { principal } = ctx;
    if (!principal) throw new TRPCError({ code: "UNAUTHORIZED", message: "a valid token is required" });
    if (!roles.includes(principal.role)) {
      throw new TRPCError({ code: "FORBIDDEN", message: `role ${principal.role} may not call this procedure` });
    }
    return next({ ctx: { principal, actor: `${name}:${principal.sub}` } });
  });

const base = t.procedure.use(mapErrors);

/** The queue's owners: UIs and the CLI. */
export const userProcedure = base.use(side("user", ["user", "admin"]));
/** Agent runtimes reporting sessions and turns. */
export const agentProcedure = base.use(side("agent", ["agent", "admin"]));
