import { createHash, randomUUID } from "node:crypto";
import { z } from "zod";
import { Id, snapshotOf, storableString, ThreadArchive, ThreadCreate, ThreadDelete, ThreadInterrupt, ThreadRename } from "../../domain/index.js";
import { authorizeThread, commandMutation } from "../commands.js";
import { threadEvents } from "../thread-events.js";
import { threadChanges } from "./thread-changes.js";
import { router, userProcedure } from "../trpc.js";

const MAX_PAGE = 200;

const MAX_BIGINT = "9223372036854775807";
/** An event seq as `tracked` ids carry it: a decimal PostgreSQL bigint (compared as digits). */
const EventSeq = z
  .string()
  .regex(/^\d{1,19}$/, "an event seq (decimal digits)")
  .refine((seq) => seq.length < MAX_BIGINT.length || seq <= MAX_BIGINT, "an event seq (at most a 64-bit integer)");

/** `thread.create` names its workspace from the token, never from the input. */
const CreateInput = ThreadCreate.omit({ type: true, workspaceId: true }).extend({
  threadId: Id.optional(),
  commandId: Id.optional(),
}).strict();

const derivedId = (...parts: string[]) => `th_${createHash("sha256").update(parts.join("\0")).digest("base64url").slice(0, 27)}`;

/**
 * The id a new thread is stored under. Ids are global (the log, the caches, the document
 * rooms and the bus channels all key on them), so an id the caller picks is a key inside its
 * workspace, never the stored id itself: taking the id verbatim would let `thread.create`
 * tell whether another workspace holds it (THREAD_EXISTS against success). Derived from the
 * workspace and the key, the same key names the same thread in one workspace, and no key
 * can reach an id of another. Without a key a create retried with the same commandId must
 * name the same thread (the engine remembers command ids per thread), so the commandId
 * decides it; with neither, any fresh id does.
 */
function threadIdFor(workspaceId: string, key: string | undefined, commandId: string | undefined): string {
  if (key !== undefined) return derivedId("thread", workspaceId, key);
  return commandId === undefined ? randomUUID() : derivedId(workspaceId, commandId);
}

export const threadRouter = router({
  create: userProcedure.input(CreateInput).mutation(async ({ ctx, input }) => {
    const threadId = threadIdFor(ctx.principal.workspaceId, input.threadId, input.commandId);
    // No authorization step: the id is in the caller's workspace by construction; the decider
    // answers a repeat with nothing to do, and a deleted thread's key with THREAD_EXISTS.
    await ctx.services.engine.execute(
      threadId,
      { type: "thread.create", workspaceId: ctx.principal.workspaceId, title: input.title },
      { commandId: input.commandId, actor: ctx.actor },
    );
    return { threadId };
  }),

  get: userProcedure.input(z.strictObject({ threadId: Id })).query(async ({ ctx, input }) => {
    await authorizeThread(ctx.services, ctx.principal, input.threadId);
    return snapshotOf(await ctx.services.engine.load(input.threadId));
  }),

  list: userProcedure
    .input(z.strictObject({ cursor: storableString(512).nullish(), limit: z.number().int().min(1).max(MAX_PAGE).default(50) }).default({ limit: 50 }))
    .query(({ ctx, input }) => ctx.services.store.listThreads(ctx.principal.workspaceId, input.cursor ?? null, input.limit)),

  archive: commandMutation(userProcedure, ThreadArchive),

  rename: commandMutation(userProcedure, ThreadRename),

  /** The thread's sent messages, newest first, each with its turn's outcome; paged like `list`. */
  history: userProcedure
    .input(z.strictObject({ threadId: Id, cursor: storableString(512).nullish(), limit: z.number().int().min(1).max(MAX_PAGE).default(20) }))
    .query(async ({ ctx, input }) => {
      await authorizeThread(ctx.services, ctx.principal, input.threadId);
      return ctx.services.store.readHistory(input.threadId, input.cursor ?? null, input.limit);
    }),

  /** The workspace's thread list, then every change to it, live (see thread-changes.ts). */
  changes: userProcedure.subscription(({ ctx, signal }) => threadChanges(ctx.services, ctx.principal.workspaceId, signal)),

  delete: commandMutation(userProcedure, ThreadDelete),

  /** Stop the running turn; the queue pauses (`interrupted`) once the agent reports it ended. */
  interrupt: commandMutation(userProcedure, ThreadInterrupt),

  /** The thread's log from `lastEventId` (or its start), then live; tRPC resumes it on reconnect. */
  events: userProcedure
    .input(z.strictObject({ threadId: Id, lastEventId: EventSeq.nullish() }))
    .subscription(async ({ ctx, input, signal }) => {
      await authorizeThread(ctx.services, ctx.principal, input.threadId);
      return threadEvents(ctx.services, input.threadId, input.lastEventId ?? null, signal);
    }),
});
