/**
 * What a runtime answers when its agent asks permission (run a command, edit a file):
 * - `all`: yes to everything;
 * - `read-only`: yes to reading, no to anything that writes or runs a command;
 * - `deny`: no to everything.
 * Every request is answered at once, so no turn ever waits on a human who is not there.
 */
export const APPROVE_POLICIES = ["all", "read-only", "deny"] as const;
export type ApprovePolicy = (typeof APPROVE_POLICIES)[number];

/** What the agent asks to do, as far as the policy cares. */
export type PermissionKind = "read" | "edit" | "execute" | "other";

export const allows = (policy: ApprovePolicy, kind: PermissionKind): boolean =>
  policy === "all" || (policy === "read-only" && kind === "read");
