/**
 * Why the decider refused a command. `reason` is the stable code clients see in
 * `data.reason`; `kind` picks the tRPC error code (not_found → NOT_FOUND, conflict → CONFLICT).
 */
export type DomainErrorReason =
  | "THREAD_NOT_FOUND"
  | "THREAD_EXISTS"
  | "THREAD_ARCHIVED"
  | "ITEM_NOT_FOUND"
  | "ITEM_EXISTS"
  | "ITEM_SENDING"
  | "ITEM_EDIT_LOCKED"
  | "TEXT_CHANGED"
  | "ITEM_NOT_SENDING"
  | "ITEM_NOT_FAILED"
  | "MESSAGE_ID_REUSED"
  | "INVALID_MOVE"
  | "INVALID_POSITION"
  | "DISPATCH_IN_FLIGHT"
  | "SESSION_NOT_READY"
  | "TURN_NOT_ACTIVE"
  | "NO_ACTIVE_TURN"
  | "STEER_TURN_MISMATCH";

const NOT_FOUND: ReadonlySet<DomainErrorReason> = new Set(["THREAD_NOT_FOUND", "ITEM_NOT_FOUND"]);

export class DomainError extends Error {
  readonly kind: "not_found" | "conflict";
  constructor(
    readonly reason: DomainErrorReason,
    message: string,
  ) {
    super(message);
    this.name = "DomainError";
    this.kind = NOT_FOUND.has(reason) ? "not_found" : "conflict";
  }
}

export const refuse = (reason: DomainErrorReason, message: string) => new DomainError(reason, message);
