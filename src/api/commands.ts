import { z } from "zod";
import { Id, type Command } from "../domain/index.js";
import type { ExecuteResult } from "../engine/types.js";
import type { Principal } from "../auth/tokens.js";
import { threadNotFound } from "./errors.js";
import type { ApiServices, userProcedure } from "./trpc.js";

type CommandShape = { type: z.ZodLiteral<Command["type"]> } & z.ZodRawShape;

/**
 * The tRPC input of a thread command, derived from the domain's command schema: the
 * command's own fields, the target thread, and an optional idempotency key. Strict, so a
 * misspelt field is an error instead of a silently dropped option.
 */
export function threadCommandInput<S extends CommandShape>(command: z.ZodObject<S>) {
  const { type: _type, ...fields } = command.shape;
  return z.strictObject({ ...(fields as Omit<S, "type">), threadId: Id, commandId: Id.optional() });
}

/**
 * A thread exists for a caller only inside the caller's workspace. Checked before anything
 * else touches the thread, so another workspace's thread costs no work and reveals nothing.
 */
export async function authorizeThread(services: ApiServices, principal: Principal, threadId: string): Promise<void> {
  if ((await services.store.workspaceOf(threadId)) !== principal.workspaceId) throw threadNotFound(threadId);
}

/**
 * Authorize, then run one command through the engine (which throws refusals as DomainError).
 * Only the thread's owner is checked here, which is remembered (no round trip): a deleted
 * thread of the caller's workspace is refused by the engine with the same THREAD_NOT_FOUND.
 */
export async function executeOnThread(
  ctx: { services: ApiServices; principal: Principal; actor: string },
  threadId: string,
  command: Command,
  commandId: string | undefined,
): Promise<ExecuteResult> {
  if ((await ctx.services.store.ownerOf(threadId)) !== ctx.principal.workspaceId) throw threadNotFound(threadId);
  return ctx.services.engine.execute(threadId, command, { commandId, actor: ctx.actor });
}

/** What most mutations answer: the thread's version after the command. */
export const versionOf = ({ version }: ExecuteResult) => ({ version });

/**
 * The usual mutation: one domain command on one thread, taking the command's own fields and
 * answering the thread's version. The command's type is read off its schema, so a procedure
 * names its command once.
 */
export function commandMutation<S extends CommandShape>(procedure: typeof userProcedure, command: z.ZodObject<S>) {
  const type = command.shape.type.value;
  return procedure.input(threadCommandInput(command)).mutation(async ({ ctx, input }) => {
    // The input is the command's schema less its type: put back, it is that command.
    const { threadId, commandId, ...fields } = input as { threadId: string; commandId?: string };
    return versionOf(await executeOnThread(ctx, threadId, { ...fields, type } as Command, commandId));
  });
}
