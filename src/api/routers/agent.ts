import { AgentSession, AgentTurnEnded, AgentTurnStarted, AgentTurnStartFailed } from "../../domain/index.js";
import { commandMutation } from "../commands.js";
import { agentProcedure, router } from "../trpc.js";
import { dispatches, threads } from "./dispatches.js";

/** What an agent runtime reports about the threads of its workspace. */
const reports = {
  session: commandMutation(agentProcedure, AgentSession),
  turnStarted: commandMutation(agentProcedure, AgentTurnStarted),
  turnStartFailed: commandMutation(agentProcedure, AgentTurnStartFailed),
  turnEnded: commandMutation(agentProcedure, AgentTurnEnded),
};

/** The agent side: reports, plus the dispatch stream (`agent.dispatches`) from ./dispatches.ts. */
export const agentRouter = router({ ...reports, dispatches, threads });
