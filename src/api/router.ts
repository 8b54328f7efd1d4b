import { agentRouter } from "./routers/agent.js";
import { queueRouter } from "./routers/queue.js";
import { threadRouter } from "./routers/thread.js";
import { router } from "./trpc.js";

export const appRouter = router({
  thread: threadRouter,
  queue: queueRouter,
  agent: agentRouter,
});

export type AppRouter = typeof appRouter;
