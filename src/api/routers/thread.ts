import { createHash, randomUUID } from "node:crypto";
import { z } from "zod";
import { Id, snapshotOf, storableString, ThreadArchive, ThreadCreate, ThreadDelete, ThreadInterrupt } from "../../domain/index.js";
import { authorizeThread, commandMutation } from "../commands.js";
import { threadEvents } from "../thread-events.js";
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

/**
 * A create retried with the same commandId must name the same thread (the engine remembers
 * command ids per thread), so without a chosen id the key decides it.
 */
const threadIdFor = (workspaceId: string, commandId: string | undefined) =>
  commandId === undefined
    ? randomUUID()
    : `th_${createHash("sha256").update(`${workspaceId}\0${commandId}`).digest("base64url").slice(0, 27)}`;

export const threadRouter = router({
  create: userProcedure.input(CreateInput).mutation(async ({ ctx, input }) => {
    const threadId = input.threadId ?? threadIdFor(ctx.principal.workspaceId, input.commandId);
    // No authorization step: the decider refuses an id taken in any workspace (THREAD_EXISTS).
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
