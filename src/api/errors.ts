import { TRPCError } from "@trpc/server";
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
 * A thread the caller may not see. Another workspace's thread is answered exactly like a
 * missing one, so ids of other workspaces cannot be probed.
 */
export const threadNotFound = (threadId: string) =>
  toTRPCError(refuse("THREAD_NOT_FOUND", `thread ${threadId} does not exist`))!;
