import { createHash } from "node:crypto";
import { z } from "zod";
import {
  Author, Id, messageStatus, QueueAdd, QueueEdit, QueueMove, QueuePause, QueueRemove, QueueResume, QueueRetry, QueueSendNow, QueueSetDelivery,
  QueueSetMode, type ItemStatus, type ThreadState,
} from "../../domain/index.js";
import { authorizeThread, commandMutation, executeOnThread, threadCommandInput, versionOf } from "../commands.js";
import { router, userProcedure } from "../trpc.js";

/**
 * The item id is chosen here (decide stays pure); the message id is the client's key. The
 * author is the caller's token, never input: a client only gives the name to show.
 */
const AddInput = threadCommandInput(QueueAdd.omit({ queueItemId: true, author: true }).extend({ authorName: Author.shape.name }));

/**
 * The item id of a message, derived rather than random: a retried `queue.add` (same
 * commandId) is then the very same command, and two devices racing to queue one message
 * propose the same item. The thread is part of it because agents key on item ids.
 */
const itemIdOf = (threadId: string, messageId: string) =>
  `qi_${createHash("sha256").update(`${threadId}\0${messageId}`).digest("base64url").slice(0, 27)}`;

/** The public move (docs/contract.md): after a given item, or to the head with `afterId: null`. */
const [AfterId] = QueueMove.shape.to.options;
const MoveInput = threadCommandInput(QueueMove.omit({ to: true }).extend(AfterId.shape));

/**
 * Where a queued message stands now. A repeated `queue.add` of a message that already left
 * the queue answers with its fate instead of queueing it twice.
 */
function statusOf(state: ThreadState, messageId: string): { queueItemId: string; status: ItemStatus | "sent" | "removed" } {
  const known = state.messages.get(messageId)!;
  const item = state.items.get(known.queueItemId);
  return { queueItemId: known.queueItemId, status: item ? item.status : known.fate === "sent" ? "sent" : "removed" };
}

export const queueRouter = router({
  add: userProcedure.input(AddInput).mutation(async ({ ctx, input }) => {
    const { threadId, commandId, authorName, ...command } = input;
    const author = { sub: ctx.principal.sub, ...(authorName !== undefined && { name: authorName }) };
    const queueItemId = itemIdOf(threadId, command.message.messageId);
    const { state } = await executeOnThread(ctx, threadId, { type: "queue.add", queueItemId, ...command, author }, commandId);
    return statusOf(state, command.message.messageId);
  }),

  edit: commandMutation(userProcedure, QueueEdit.omit({ via: true, replaces: true, basedOn: true })),

  move: userProcedure.input(MoveInput).mutation(async ({ ctx, input }) => {
    const { threadId, commandId, queueItemId, afterId } = input;
    return versionOf(await executeOnThread(ctx, threadId, { type: "queue.move", queueItemId, to: { afterId } }, commandId));
  }),

  remove: commandMutation(userProcedure, QueueRemove),
  retry: commandMutation(userProcedure, QueueRetry),
  sendNow: commandMutation(userProcedure, QueueSendNow),
  setDelivery: commandMutation(userProcedure, QueueSetDelivery),
  setMode: commandMutation(userProcedure, QueueSetMode),
  /** What became of a message: asked by a client that lost its connection, instead of sending it again. */
  status: userProcedure.input(z.strictObject({ threadId: Id, messageId: Id })).query(async ({ ctx, input }) => {
    await authorizeThread(ctx.services, ctx.principal, input.threadId);
    const status = messageStatus(await ctx.services.engine.load(input.threadId), input.messageId);
    if (status.state !== "sent") return status;
    // The state keeps no turn outcomes (it would grow with every turn): the projection has them.
    const outcome = await ctx.services.store.turnOutcome(input.threadId, status.turnId);
    return outcome ? { ...status, outcome } : status;
  }),
  pause: commandMutation(userProcedure, QueuePause),
  resume: commandMutation(userProcedure, QueueResume),
});
