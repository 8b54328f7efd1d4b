import { AgentSession, AgentTurnEnded, AgentTurnStarted, AgentTurnStartFailed } from "../../domain/index.js";
import { executeOnThread, threadCommandInput, versionOf } from "../commands.js";
import { agentProcedure, router } from "../trpc.js";
import { dispatches, threads } from "./dispatches.js";

/** What an agent runtime reports about the threads of its workspace. */
const reports = {
  session: agentProcedure.input(threadCommandInput(AgentSession)).mutation(async ({ ctx, input }) => {
    const { threadId, commandId, ...command } = input;
    return versionOf(await executeOnThread(ctx, threadId, { type: "agent.session", ...command }, commandId));
  }),

  turnStarted: agentProcedure.input(threadCommandInput(AgentTurnStarted)).mutation(async ({ ctx, input }) => {
    const { threadId, commandId, ...command } = input;
    return versionOf(await executeOnThread(ctx, threadId, { type: "agent.turnStarted", ...command }, commandId));
  }),

  turnStartFailed: agentProcedure.input(threadCommandInput(AgentTurnStartFailed)).mutation(async ({ ctx, input }) => {
    const { threadId, commandId, ...command } = input;
    return versionOf(await executeOnThread(ctx, threadId, { type: "agent.turnStartFailed", ...command }, commandId));
  }),

  turnEnded: agentProcedure.input(threadCommandInput(AgentTurnEnded)).mutation(async ({ ctx, input }) => {
    const { threadId, commandId, ...command } = input;
    return versionOf(await executeOnThread(ctx, threadId, { type: "agent.turnEnded", ...command }, commandId));
  }),
};

/** The agent side: reports, plus the dispatch stream (`agent.dispatches`) from ./dispatches.ts. */
export const agentRouter = router({ ...reports, dispatches, threads });
