import { on, EventEmitter } from "node:events";
import { tracked } from "@trpc/server";
import { z } from "zod";
import { channels } from "../../cluster/bus.js";
import { trace } from "@opentelemetry/api";
import { dispatchOf, type Dispatch, type EventOf, type StoredEvent } from "../../domain/index.js";
import { ofDispatch, traceparentOf, tracer } from "../../observability/tracing.js";
import type { Services } from "../../services.js";
import { agentProcedure } from "../trpc.js";

type Claim = StoredEvent & EventOf<"queue.item-send-started">;

const isClaim = (e: StoredEvent): e is Claim => e.type === "queue.item-send-started";

/**
 * `agent.dispatches`: every dispatch of the agent's workspace not yet acknowledged (the
 * claim events of items still `sending`), then live ones, tracked by event seq.
 *
 * A stream resumed with `lastEventId` still starts with every unacknowledged dispatch, even
 * those at or below that seq: seqs are assigned at insert, so on PostgreSQL a claim can
 * commit after one with a higher seq was delivered, and skipping by seq would lose it. The
 * runtime dedupes by `queueItemId`; what it must never miss is a dispatch it did not start.
 * Live claims come from the bus, which may lose messages: the unacknowledged set is polled
 * again on the sweep interval, so a lost message delays a dispatch, never drops it.
 */
export const dispatches = agentProcedure
  // tRPC sends the last tracked id back on reconnect; it is accepted and, as said above, not a filter.
  .input(z.object({ lastEventId: z.string().regex(/^\d+$/, "an event seq").nullish() }))
  .subscription(async function* ({ ctx, signal }) {
    const { services, principal } = ctx;
    const workspaceId = principal.workspaceId;
    const inbox = new EventEmitter<{ events: [StoredEvent[]] }>();
    // `on` buffers from now on: nothing the bus delivers while the backlog is sent is lost.
    const arrivals = on(inbox, "events", { signal }) as AsyncIterable<[StoredEvent[]]>;

    // Subscribe before reading the backlog: a claim committed in between is in one or both.
    const unsubscribe = await services.bus.subscribe(channels.events, (message) => {
      const events = eventsIn(message).filter((e) => e.workspaceId === workspaceId);
      if (events.length > 0) inbox.emit("events", events);
    });
    const poll = async () => inbox.emit("events", await unacknowledged(services, workspaceId));
    const poller = setInterval(() => void poll().catch(() => {}), services.config.sweepIntervalMs);
    try {
      /** queueItemId → seq of the claim sent on this stream and not yet seen acknowledged. */
      const sent = new Map<string, string>();
      const deliver = (claim: Claim) => {
        if (sent.get(claim.payload.queueItemId) === claim.seq) return null;
        sent.set(claim.payload.queueItemId, claim.seq);
        return tracked(claim.seq, withTrace(claim));
      };
      for (const claim of await unacknowledged(services, workspaceId)) {
        const dispatch = deliver(claim);
        if (dispatch) yield dispatch;
      }
      for await (const [events] of arrivals) {
        for (const event of events) {
          if (isClaim(event)) {
            const dispatch = deliver(event);
            if (dispatch) yield dispatch;
          } else if (ACKNOWLEDGEMENTS.has(event.type) && "queueItemId" in event.payload) {
            sent.delete(event.payload.queueItemId);
          }
        }
      }
    } catch (error) {
      if (!signal?.aborted) throw error;
    } finally {
      clearInterval(poller);
      await unsubscribe();
    }
  });

/**
 * The dispatch, with the W3C `traceparent` of a "dispatch" span under its claim when tracing
 * is on: the agent sends it back with `turnStarted`, which continues the same trace.
 */
function withTrace(claim: Claim): Dispatch & { traceparent?: string } {
  const dispatch = dispatchOf(claim);
  const claimed = ofDispatch.get(claim.payload.dispatchId);
  if (!claimed) return dispatch;
  const span = tracer.startSpan("dispatch", { attributes: { "turnqueue.dispatch_id": claim.payload.dispatchId } }, claimed);
  span.end();
  const traceparent = traceparentOf(trace.setSpan(claimed, span));
  return traceparent ? { ...dispatch, traceparent } : dispatch;
}

/** Events after which an item's claim is no longer unacknowledged. */
const ACKNOWLEDGEMENTS = new Set<StoredEvent["type"]>(["queue.item-resolved", "queue.item-send-failed", "queue.item-removed"]);

/** A bus message's events; an unreadable message is none (the poll covers what it carried). */
function eventsIn(message: Uint8Array): StoredEvent[] {
  try {
    const events: unknown = JSON.parse(new TextDecoder().decode(message));
    return Array.isArray(events) ? (events as StoredEvent[]) : [];
  } catch {
    return [];
  }
}

async function unacknowledged(services: Services, workspaceId: string): Promise<Claim[]> {
  const events = await services.store.unacknowledgedDispatches(workspaceId);
  return events.filter(isClaim).sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
}

export interface AgentThread {
  threadId: string;
  sessionStatus: string;
}

const LIST_PAGE = 200;

/**
 * `agent.threads`: the workspace's active threads (with their session status), then each
 * thread created later. A runtime that keeps one session per thread (the echo agent) learns
 * here which threads to report ready on. Not resumable: a reconnect lists again.
 */
export const threads = agentProcedure.subscription(async function* ({ ctx, signal }) {
  const { services, principal } = ctx;
  const inbox = new EventEmitter<{ created: [AgentThread] }>();
  const arrivals = on(inbox, "created", { signal }) as AsyncIterable<[AgentThread]>;
  const unsubscribe = await services.bus.subscribe(channels.events, (message) => {
    for (const e of eventsIn(message)) {
      if (e.type === "thread.created" && e.workspaceId === principal.workspaceId) {
        inbox.emit("created", { threadId: e.threadId, sessionStatus: "unknown" });
      }
    }
  });
  try {
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<Services["store"]["listThreads"]>> =
        await services.store.listThreads(principal.workspaceId, cursor, LIST_PAGE);
      for (const t of page.items) if (!t.archived) yield { threadId: t.threadId, sessionStatus: t.sessionStatus };
      cursor = page.nextCursor;
    } while (cursor !== null);
    for await (const [thread] of arrivals) yield thread;
  } catch (error) {
    if (!signal?.aborted) throw error;
  } finally {
    await unsubscribe();
  }
});
