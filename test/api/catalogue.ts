import { appRouter } from "../../src/api/router.js";
import type { Kind } from "../support/trpc-raw.js";

/** What inputs of the catalogue refer to: a thread of the caller's workspace and one of its items. */
export interface Target {
  threadId: string;
  queueItemId: string;
}

export interface ProcedureSpec {
  path: string;
  kind: Kind;
  /** The role whose token the procedure answers. */
  role: "user" | "agent";
  /** An input the procedure's schema accepts (the command may still be refused by a rule). */
  input(target: Target): unknown;
}

/**
 * Every procedure of the router with a schema-valid input, every optional field present,
 * so that tests which poison or mutate inputs reach every string the schemas take.
 */
export const catalogue: ProcedureSpec[] = [
  { path: "thread.create", kind: "mutation", role: "user", input: () => ({ threadId: "t-new", title: "title", commandId: "c-create" }) },
  { path: "thread.get", kind: "query", role: "user", input: (t) => ({ threadId: t.threadId }) },
  { path: "thread.list", kind: "query", role: "user", input: () => ({ cursor: null, limit: 10 }) },
  { path: "thread.archive", kind: "mutation", role: "user", input: (t) => ({ threadId: t.threadId, commandId: "c-archive" }) },
  { path: "thread.rename", kind: "mutation", role: "user", input: (t) => ({ threadId: t.threadId, title: "renamed", commandId: "c-rename" }) },
  { path: "thread.history", kind: "query", role: "user", input: (t) => ({ threadId: t.threadId, cursor: null, limit: 10 }) },
  { path: "thread.changes", kind: "subscription", role: "user", input: () => undefined },
  { path: "thread.delete", kind: "mutation", role: "user", input: (t) => ({ threadId: t.threadId, commandId: "c-delete" }) },
  { path: "thread.interrupt", kind: "mutation", role: "user", input: (t) => ({ threadId: t.threadId, commandId: "c-interrupt" }) },
  { path: "thread.events", kind: "subscription", role: "user", input: (t) => ({ threadId: t.threadId, lastEventId: "1" }) },
  {
    path: "queue.add",
    kind: "mutation",
    role: "user",
    input: (t) => ({
      threadId: t.threadId,
      commandId: "c-add",
      message: { messageId: "m-new", text: "text", attachments: [{ name: "a.txt", mimeType: "text/plain", url: "https://x/a.txt", size: 1 }] },
      options: { model: "model", mode: "mode", extra: "value" },
      delivery: "queue",
      authorName: "Alice",
    }),
  },
  { path: "queue.edit", kind: "mutation", role: "user", input: (t) => ({ threadId: t.threadId, queueItemId: t.queueItemId, text: "edited", commandId: "c-edit" }) },
  { path: "queue.move", kind: "mutation", role: "user", input: (t) => ({ threadId: t.threadId, queueItemId: t.queueItemId, afterId: "other", commandId: "c-move" }) },
  { path: "queue.remove", kind: "mutation", role: "user", input: (t) => ({ threadId: t.threadId, queueItemId: t.queueItemId, commandId: "c-remove" }) },
  { path: "queue.retry", kind: "mutation", role: "user", input: (t) => ({ threadId: t.threadId, queueItemId: t.queueItemId, commandId: "c-retry" }) },
  { path: "queue.sendNow", kind: "mutation", role: "user", input: (t) => ({ threadId: t.threadId, queueItemId: t.queueItemId, commandId: "c-send" }) },
  {
    path: "queue.setDelivery",
    kind: "mutation",
    role: "user",
    input: (t) => ({ threadId: t.threadId, queueItemId: t.queueItemId, delivery: "steer", commandId: "c-delivery" }),
  },
  { path: "queue.setMode", kind: "mutation", role: "user", input: (t) => ({ threadId: t.threadId, mode: "step", commandId: "c-mode" }) },
  { path: "queue.status", kind: "query", role: "user", input: (t) => ({ threadId: t.threadId, messageId: "m-new" }) },
  { path: "queue.pause", kind: "mutation", role: "user", input: (t) => ({ threadId: t.threadId, commandId: "c-pause" }) },
  { path: "queue.resume", kind: "mutation", role: "user", input: (t) => ({ threadId: t.threadId, commandId: "c-resume" }) },
  { path: "agent.session", kind: "mutation", role: "agent", input: (t) => ({ threadId: t.threadId, status: "error", error: "why", runtimeSessionId: "runtime-session", retryAt: "2030-01-01T00:00:00.000Z", commandId: "c-session" }) },
  { path: "agent.turnStarted", kind: "mutation", role: "agent", input: (t) => ({ threadId: t.threadId, queueItemId: t.queueItemId, turnId: "turn", commandId: "c-started" }) },
  {
    path: "agent.turnStartFailed",
    kind: "mutation",
    role: "agent",
    input: (t) => ({ threadId: t.threadId, queueItemId: t.queueItemId, reason: "why", retryable: true, retryAt: "2030-01-01T00:00:00.000Z", commandId: "c-failed" }),
  },
  { path: "agent.turnEnded", kind: "mutation", role: "agent", input: (t) => ({ threadId: t.threadId, turnId: "turn", outcome: "failed", error: "why", commandId: "c-ended" }) },
  { path: "agent.dispatches", kind: "subscription", role: "agent", input: () => ({ lastEventId: "1" }) },
  { path: "agent.threads", kind: "subscription", role: "agent", input: () => undefined },
];

/** Every procedure path of the router, so a test can check the catalogue misses none. */
export const routerPaths = (): string[] => Object.keys(appRouter._def.procedures).sort();

/** Every string in a value (object keys too) replaced by `poison`, one at a time: [path, value]. */
export function poisoned(value: unknown, poison: string): [string, unknown][] {
  const out: [string, unknown][] = [];
  const walk = (v: unknown, at: string, put: (x: unknown) => unknown) => {
    if (typeof v === "string") return void out.push([at, put(`${v}${poison}`)]);
    if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${at}[${i}]`, (y) => put(v.map((z, j) => (j === i ? y : z)))));
    if (v && typeof v === "object") {
      const entries = Object.entries(v);
      entries.forEach(([key, x]) => {
        walk(x, `${at}.${key}`, (y) => put({ ...v, [key]: y }));
        // A free-form key (an option name) is stored like any value.
        if (at.endsWith(".options")) {
          out.push([`${at}[key ${key}]`, put(Object.fromEntries(entries.map(([k, z]) => [k === key ? `${k}${poison}` : k, z])))]);
        }
      });
    }
  };
  walk(value, "input", (x) => x);
  return out;
}
