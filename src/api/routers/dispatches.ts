import { tracked } from "@trpc/server";
import { z } from "zod";
import { trace } from "@opentelemetry/api";
import { awaitsDispatch, dispatchOf, interruptDispatchOf, type Dispatch, type EventOf, type StoredEvent } from "../../domain/index.js";
import { ofDispatch, traceparentOf, tracer } from "../../tracing.js";
import { agentProcedure, type ApiServices } from "../trpc.js";

type Claim = StoredEvent & EventOf<"queue.item-send-started">;
type InterruptRequest = StoredEvent & EventOf<"thread.interrupt-requested">;
/** An event that is a dispatch: an item's claim or an interrupt request. */
type Dispatching = Claim | InterruptRequest;

const isDispatching = (e: StoredEvent): e is Dispatching =>
  e.type === "queue.item-send-started" || e.type === "thread.interrupt-requested";

/** What acknowledges a dispatch is keyed like this: the item, or the turn to interrupt. */
const dispatchKey = (e: Dispatching) =>
  e.type === "queue.item-send-started" ? `item:${e.payload.queueItemId}` : `turn:${e.threadId}:${e.payload.turnId}`;

const toDispatch = (e: Dispatching): Dispatch =>
  e.type === "queue.item-send-started" ? dispatchOf(e) : interruptDispatchOf(e);

/**
 * `agent.dispatches`: every dispatch of the agent's workspace not yet acknowledged (the
 * claim events of items still `sending`, the interrupt requests of turns still running),
 * then live ones, tracked by event seq.
 *
 * A stream resumed with `lastEventId` still starts with every unacknowledged dispatch, even
 * those at or below that seq: seqs are assigned at insert, so on PostgreSQL a claim can
 * commit after one with a higher seq was delivered, and skipping by seq would lose it. The
 * runtime dedupes by `queueItemId`; what it must never miss is a dispatch it did not start.
 * Live claims come from the bus, which may lose messages: the unacknowledged set is polled
 * again on the sweep interval, so a lost message delays a dispatch, never drops it.
 *
 * A live dispatch that reaches the stream late (this instance was paused, starved or cut off
 * since it was claimed) may be owed to nobody by now: the claim may have timed out and its
 * item been removed, and an agent handed it would run a message the user took back. So one
 * claimed more than a moment ago is checked against the log before it goes; on time, nothing
 * but the runtime's own report can have resolved it (a sending item is frozen). The backlog
 * and the sweep's polls are read from the log as they are sent. A read counts only while it is
 * fresh: one answered late, or acted on a moment after (the instance was paused in between:
 * its request was answered while it was stopped, and it acted on the answer once continued:
 * `npm run chaos`, pause-instance seed 2), is not acted on; the next poll reads again. And a
 * claim read again or polled goes only while it surely stands: until the earliest moment its
 * dispatch timeout could end it on any instance, less a moment for clocks. Past that, nothing
 * read before the send can rule out a timeout and a removal just before it; the claim times
 * out and its item is sent again under a new one. The backlog a runtime gets when it
 * (re)connects goes whatever its age (fresh reads only): after a restart the timeout is
 * counted from the boot, so the runtime has a whole timeout to start what it is given then.
 */
export const dispatches = agentProcedure
  // tRPC sends the last tracked id back on reconnect; it is accepted and, as said above, not a filter.
  .input(z.object({ lastEventId: z.string().regex(/^\d+$/, "an event seq").nullish() }))
  .subscription(async function* ({ ctx, signal }) {
    const { services, principal } = ctx;
    const workspaceId = principal.workspaceId;
    // Live before the backlog is read: a claim committed in between is in one or both. An
    // empty batch (the sweep) polls the unacknowledged set again, for what the bus lost.
    const live = await services.engine.feed.stream({
      keep: (events) => events.filter((e) => e.workspaceId === workspaceId),
      sweepMs: services.config.sweepIntervalMs,
      signal,
    });
    const lateMs = Math.min(LATE_MS, services.config.drainPolicy.dispatchTimeoutMs / 2);
    const fresh = (since: number) => Date.now() - since < lateMs;
    const { dispatchTimeoutMs } = services.config.drainPolicy;
    /** No instance times a claim out before its dispatch timeout from the claim (a restart only counts from later). */
    const stands = (event: Dispatching) =>
      event.type !== "queue.item-send-started" || Date.now() < Date.parse(event.createdAt) + dispatchTimeoutMs - lateMs;
    /** Whether a live dispatch is still owed, read again from the log when it comes late. */
    const owed = async (event: Dispatching) => {
      if (fresh(Date.parse(event.createdAt))) return true;
      // The log unreadable now, or read too slowly to count, the sweep's poll sends it later if it is still owed.
      const asked = Date.now();
      const state = await services.engine.load(event.threadId).catch(() => null);
      return state !== null && fresh(asked) && stands(event) && awaitsDispatch(state, toDispatch(event));
    };
    /** The unacknowledged dispatches, and when they were asked for. */
    const backlog = async () => {
      const asked = Date.now();
      return { asked, events: await unacknowledged(services, workspaceId) };
    };
    try {
      /** dispatchKey → seq of the dispatch sent on this stream and not yet seen acknowledged. */
      const sent = new Map<string, string>();
      const deliver = (event: Dispatching) => {
        const key = dispatchKey(event);
        if (sent.get(key) === event.seq) return null;
        sent.set(key, event.seq);
        return tracked(event.seq, withTrace(event));
      };
      // A runtime (re)connecting waits for nothing but this read: one answered too late to count
      // is made again, not left to the next poll (a sweep interval away).
      let first = await backlog();
      for (let tries = 1; !fresh(first.asked) && tries < BACKLOG_READS; tries++) first = await backlog();
      for (const claim of first.events) {
        if (!fresh(first.asked)) break;
        const dispatch = deliver(claim);
        if (dispatch) yield dispatch;
      }
      for await (const batch of live) {
        const polled = batch.length === 0 ? await backlog().catch(() => ({ asked: 0, events: [] })) : null;
        for (const event of polled?.events ?? batch) {
          if (isDispatching(event)) {
            if (polled ? !(fresh(polled.asked) && stands(event)) : !(await owed(event))) continue;
            const dispatch = deliver(event);
            if (dispatch) yield dispatch;
          } else if (ACKNOWLEDGEMENTS.has(event.type) && "queueItemId" in event.payload) {
            sent.delete(`item:${event.payload.queueItemId}`);
          } else if (event.type === "turn.ended") {
            sent.delete(`turn:${event.threadId}:${event.payload.turnId}`);
          }
        }
      }
    } catch (error) {
      if (!signal?.aborted) throw error;
    } finally {
      await live.close();
    }
  });

/**
 * The dispatch, with the W3C `traceparent` of a "dispatch" span under its claim when tracing
 * is on: the agent sends it back with `turnStarted`, which continues the same trace.
 */
function withTrace(event: Dispatching): Dispatch & { traceparent?: string } {
  const dispatch = toDispatch(event);
  const claimed = event.type === "queue.item-send-started" ? ofDispatch.get(event.payload.dispatchId) : undefined;
  if (!claimed || event.type !== "queue.item-send-started") return dispatch;
  const span = tracer.startSpan("dispatch", { attributes: { "turnqueue.dispatch_id": event.payload.dispatchId } }, claimed);
  span.end();
  const traceparent = traceparentOf(trace.setSpan(claimed, span));
  return traceparent ? { ...dispatch, traceparent } : dispatch;
}

/** A dispatch claimed longer ago than this is late (by the claiming instance's clock and this one's). */
const LATE_MS = 1_000;
/** How many times a stream's first read of the backlog is made before its late answer is left to the next poll. */
const BACKLOG_READS = 3;

/** Events after which an item's claim is no longer unacknowledged. */
const ACKNOWLEDGEMENTS = new Set<StoredEvent["type"]>(["queue.item-resolved", "queue.item-send-failed", "queue.item-removed"]);

async function unacknowledged(services: ApiServices, workspaceId: string): Promise<Dispatching[]> {
  const events = await services.store.unacknowledgedDispatches(workspaceId);
  return events.filter(isDispatching).sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
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
  const live = await services.engine.feed.stream({
    keep: (events) => events.filter((e) => e.type === "thread.created" && e.workspaceId === principal.workspaceId),
    // Not resumable, so not swept: a reconnect lists again.
    signal,
  });
  try {
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<ApiServices["store"]["listThreads"]>> =
        await services.store.listThreads(principal.workspaceId, cursor, LIST_PAGE);
      for (const t of page.items) if (!t.archived) yield { threadId: t.threadId, sessionStatus: t.sessionStatus };
      cursor = page.nextCursor;
    } while (cursor !== null);
    for await (const events of live) {
      for (const e of events) yield { threadId: e.threadId, sessionStatus: "unknown" };
    }
  } catch (error) {
    if (!signal?.aborted) throw error;
  } finally {
    await live.close();
  }
});
