import { TRPCError } from "@trpc/server";
import { z, ZodError } from "zod";
import { DomainError, refuse } from "../domain/index.js";
import { CommandIdReusedError, EngineClosedError } from "../engine/index.js";
import { InvalidCursorError } from "../store/event-store.js";
import { StoreUnavailableError } from "../store/types.js";

/**
 * The one translation of our failures into tRPC codes (docs/contract.md, "Errors"). The original
 * error stays the `cause`, so the error formatter can surface its stable `reason`.
 */
export function toTRPCError(error: unknown): TRPCError | null {
  if (error instanceof TRPCError) return error;
  if (error instanceof DomainError) {
    return new TRPCError({ code: error.kind === "not_found" ? "NOT_FOUND" : "CONFLICT", message: error.message, cause: error });
  }
  if (error instanceof InvalidCursorError) return new TRPCError({ code: "BAD_REQUEST", message: error.message, cause: error });
  if (error instanceof CommandIdReusedError) return new TRPCError({ code: "CONFLICT", message: error.message, cause: error });
  if (error instanceof StoreUnavailableError) {
    return new TRPCError({ code: "SERVICE_UNAVAILABLE", message: "the store is unavailable; retry shortly", cause: error });
  }
  // This instance is stopping; the same call succeeds against a live one.
  if (error instanceof EngineClosedError) {
    return new TRPCError({ code: "SERVICE_UNAVAILABLE", message: "the server is shutting down; retry shortly", cause: error });
  }
  return null;
}

/** The stable code clients branch on (`data.reason`), when the error has one. */
export const reasonOf = (error: TRPCError): string | null =>
  error.cause instanceof DomainError || error.cause instanceof CommandIdReusedError ? error.cause.reason : null;

/**
 * What a client learns of a failure, on every door (tRPC's `data`, REST's and MCP's error
 * bodies): the code, a message safe to show (an unexpected failure's text may quote SQL or
 * paths, so it becomes a plain word; our log keeps the rest), the stable `reason` of a
 * refusal and the invalid fields of bad input.
 */
export function publicErrorData(error: TRPCError) {
  return {
    code: error.code,
    message: error.code === "INTERNAL_SERVER_ERROR" ? "internal error" : error.message,
    reason: reasonOf(error),
    zodError: error.code === "BAD_REQUEST" && error.cause instanceof ZodError ? z.flattenError(error.cause) : null,
  };
}

/**
 * A thread the caller may not see. Another workspace's thread is answered exactly like a
 * missing one, so ids of other workspaces cannot be probed.
 */
export const threadNotFound = (threadId: string) =>
  toTRPCError(refuse("THREAD_NOT_FOUND", `thread ${threadId} does not exist`))!;
