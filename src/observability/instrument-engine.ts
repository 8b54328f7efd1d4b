import { DomainError } from "../domain/index.js";
import type { Engine } from "../engine/types.js";
import { StoreUnavailableError } from "../store/types.js";
import type { Metrics } from "./metrics.js";

type Outcome = "ok" | "replayed" | "refused" | "unavailable" | "error";

const outcomeOf = (error: unknown): Outcome =>
  error instanceof DomainError ? "refused" : error instanceof StoreUnavailableError ? "unavailable" : "error";

/**
 * The engine as every plug-in sees it: the same Engine, counted and timed, so command
 * metrics cover every door (tRPC, Yjs, reactors) without each one measuring itself.
 */
export function instrumentEngine(engine: Engine, metrics: Metrics): Engine {
  return {
    feed: engine.feed,
    async execute(threadId, command, options) {
      const stopTimer = metrics.commandSeconds.startTimer({ type: command.type });
      try {
        const result = await engine.execute(threadId, command, options);
        metrics.commands.inc({ type: command.type, outcome: result.replayed ? "replayed" : "ok" });
        return result;
      } catch (error) {
        metrics.commands.inc({ type: command.type, outcome: outcomeOf(error) });
        throw error;
      } finally {
        stopTimer();
      }
    },
    load: (threadId) => engine.load(threadId),
    addPreClaimBarrier: (barrier) => engine.addPreClaimBarrier(barrier),
    close: () => engine.close(),
  };
}
