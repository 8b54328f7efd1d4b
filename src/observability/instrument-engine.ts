import { DomainError } from "../domain/index.js";
import type { Engine } from "../engine/types.js";
import { StoreUnavailableError } from "../store/types.js";
import type { Logger } from "pino";
import { inSpan } from "../tracing.js";
import type { Metrics } from "./metrics.js";
import { createQueueEventObserver } from "./queue-events.js";

type Outcome = "ok" | "replayed" | "refused" | "unavailable" | "error";

const outcomeOf = (error: unknown): Outcome =>
  error instanceof DomainError ? "refused" : error instanceof StoreUnavailableError ? "unavailable" : "error";

/**
 * The engine as every plug-in sees it: the same Engine, counted and timed, so command
 * metrics cover every door (tRPC, Yjs, reactors) without each one measuring itself.
 */
export function instrumentEngine(engine: Engine, metrics: Metrics, logger: Logger): Engine {
  const observe = createQueueEventObserver(metrics, logger);
  const log = logger.child({ component: "engine" });
  return {
    feed: engine.feed,
    execute: (threadId, command, options) =>
      // One span per command, whichever door it came through: the trace's spine.
      inSpan(`command ${command.type}`, { "turnqueue.thread_id": threadId, "turnqueue.actor": options.actor }, async () => {
        const stopTimer = metrics.commandSeconds.startTimer({ type: command.type });
        try {
          const result = await engine.execute(threadId, command, options);
          const outcome = result.replayed ? "replayed" : "ok";
          metrics.commands.inc({ type: command.type, outcome });
          observe(result.events);
          log.debug({ threadId, command: command.type, actor: options.actor, outcome, version: result.version }, "command");
          return result;
        } catch (error) {
          const outcome = outcomeOf(error);
          metrics.commands.inc({ type: command.type, outcome });
          log.debug({ threadId, command: command.type, actor: options.actor, outcome, reason: (error as { reason?: string }).reason }, "command");
          throw error;
        } finally {
          stopTimer();
        }
      }),
    load: (threadId, seen) => engine.load(threadId, seen),
    addPreClaimBarrier: (barrier) => engine.addPreClaimBarrier(barrier),
    close: () => engine.close(),
  };
}
