import type { Logger } from "pino";
import type { StoredEvent } from "../domain/index.js";
import type { Metrics } from "./metrics.js";

/** Items whose times are remembered at most (dispatch latency); the oldest are forgotten first. */
const REMEMBERED = 100_000;

/**
 * What the operator sees of the queue: each event this instance commits becomes an `info`
 * line (ids only, never text or tokens) and counts. Every committing instance reports its
 * own commits, so summing over instances counts each event once.
 *
 * Dispatch latency is measured from times this instance saw: ready → dispatched from the
 * later of the item's arrival, its retry time and the end of the turn before it; dispatched
 * → started from the claim. An item that became ready before a restart is not measured.
 */
export function createQueueEventObserver(metrics: Metrics, logger: Logger) {
  const log = logger.child({ component: "queue" });
  /** queueItemId → when it may be sent at the earliest (arrival or retry time). */
  const readyAt = new Bounded<number>();
  /** threadId → when its agent last became free (a turn ended). */
  const freedAt = new Bounded<number>();
  /** queueItemId → claim time. */
  const dispatchedAt = new Bounded<number>();

  return (events: readonly StoredEvent[]): void => {
    for (const e of events) {
      const at = Date.parse(e.createdAt);
      const ids = { threadId: e.threadId, workspaceId: e.workspaceId };
      switch (e.type) {
        case "queue.item-added":
          readyAt.set(e.payload.queueItemId, at);
          break;
        case "queue.item-send-started": {
          const { queueItemId, dispatchId, attempt, kind } = e.payload;
          const ready = Math.max(readyAt.get(queueItemId) ?? Number.NaN, freedAt.get(e.threadId) ?? 0);
          if (Number.isFinite(ready)) metrics.readyToDispatchedSeconds.observe(Math.max(0, at - ready) / 1000);
          dispatchedAt.set(queueItemId, at);
          metrics.dispatches.inc({ kind });
          log.info({ ...ids, queueItemId, dispatchId, attempt, kind }, "dispatched");
          break;
        }
        case "turn.started": {
          const claimed = dispatchedAt.get(e.payload.queueItemId);
          if (claimed !== undefined) metrics.dispatchedToStartedSeconds.observe(Math.max(0, at - claimed) / 1000);
          dispatchedAt.delete(e.payload.queueItemId);
          log.info({ ...ids, queueItemId: e.payload.queueItemId, turnId: e.payload.turnId }, "turn started");
          break;
        }
        case "queue.item-send-failed": {
          const { queueItemId, dispatchId, reason, final, retryAt } = e.payload;
          dispatchedAt.delete(queueItemId);
          const timedOut = reason.startsWith("timeout");
          if (timedOut) metrics.timeouts.inc();
          if (final) {
            metrics.failures.inc({ reason: timedOut ? "timeout" : "start_failed" });
            readyAt.delete(queueItemId);
            log.info({ ...ids, queueItemId, dispatchId, reason }, timedOut ? "dispatch timed out: item failed" : "item failed");
          } else {
            metrics.retries.inc();
            if (retryAt) readyAt.set(queueItemId, Date.parse(retryAt));
            log.info({ ...ids, queueItemId, dispatchId, reason, retryAt }, "start failed: retry scheduled");
          }
          break;
        }
        case "queue.item-requeued":
          readyAt.set(e.payload.queueItemId, at);
          log.info({ ...ids, queueItemId: e.payload.queueItemId }, "item requeued");
          break;
        case "queue.item-resolved":
          readyAt.delete(e.payload.queueItemId);
          break;
        case "queue.item-removed":
          readyAt.delete(e.payload.queueItemId);
          dispatchedAt.delete(e.payload.queueItemId);
          break;
        case "turn.ended":
          freedAt.set(e.threadId, at);
          log.info({ ...ids, turnId: e.payload.turnId, outcome: e.payload.outcome }, "turn ended");
          break;
        case "queue.paused":
          metrics.holds.inc({ reason: e.payload.reason });
          log.info({ ...ids, reason: e.payload.reason, resumeAt: e.payload.resumeAt }, "queue held");
          break;
        case "queue.resumed":
          log.info(ids, "queue resumed");
          break;
        case "thread.interrupt-requested":
          log.info({ ...ids, turnId: e.payload.turnId, dispatchId: e.payload.dispatchId }, "interrupt requested");
          break;
        case "session.changed":
          if (e.payload.status === "ready") freedAt.set(e.threadId, Math.max(freedAt.get(e.threadId) ?? 0, at));
          break;
        case "thread.created":
        case "thread.archived":
        case "thread.renamed":
        case "thread.deleted":
        case "queue.item-edited":
        case "queue.item-moved":
        case "queue.item-edit-locked":
        case "queue.item-typing-revoked":
        case "queue.item-delivery-changed":
        case "queue.mode-changed":
        case "message.sent":
          break;
        default:
          assertNever(e);
      }
    }
  };
}

function assertNever(value: never): never {
  throw new Error(`unhandled event ${JSON.stringify(value)}`);
}

/** A Map that forgets its oldest entries beyond REMEMBERED. */
class Bounded<V> {
  private readonly map = new Map<string, V>();
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > REMEMBERED) this.map.delete(this.map.keys().next().value!);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
}
