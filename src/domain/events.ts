import { z } from "zod";
import {
  Attachments, Author, Delivery, DispatchKind, EditVia, Id, PauseReason, PositionKey, QueueMode, ReportedSessionStatus, Text, TurnOptions,
  TurnOutcome,
} from "./primitives.js";

/**
 * Every public event (docs/contract.md), as the decider emits it (before the store stamps seq,
 * version and createdAt). One zod schema per event; the union is what the log holds.
 */
const event = <T extends string, P extends z.ZodRawShape>(type: T, payload: P) =>
  z.object({ type: z.literal(type), payload: z.object(payload) });

/**
 * The message an item event concerns. Every item event carries it since the queue learnt
 * message fates (migration 20261202100000_queue_semantics); events stored before have none, and the log is never rewritten.
 */
const messageId = Id.optional();

export const DispatchPayload = {
  queueItemId: Id,
  dispatchId: Id,
  kind: DispatchKind,
  expectedTurnId: Id.nullable(),
  /** The agent's session id stored with the thread when the item was claimed (absent before any). */
  runtimeSessionId: Id.nullable().default(null),
  attempt: z.number().int().positive(),
  message: z.object({ messageId: Id, text: Text, attachments: Attachments }),
  options: TurnOptions,
};

export const DomainEvent = z.discriminatedUnion("type", [
  event("thread.created", { workspaceId: Id, title: z.string().max(512) }),
  event("thread.archived", {}),
  event("thread.renamed", { title: z.string().max(512) }),
  event("thread.deleted", {}),
  event("session.changed", {
    status: ReportedSessionStatus,
    error: z.string().nullable(),
    /** Set when the agent reported its session id; absent: the stored one stays. */
    runtimeSessionId: Id.optional(),
  }),
  /** The user asked to stop `turnId`; the runtime receives it as an `interrupt` dispatch. */
  event("thread.interrupt-requested", { turnId: Id, dispatchId: Id, runtimeSessionId: Id.nullable() }),
  event("queue.item-added", {
    queueItemId: Id,
    messageId: Id,
    text: Text,
    attachments: Attachments,
    options: TurnOptions,
    position: PositionKey,
    /** Absent in events stored before delivery modes: those items were queued plainly. */
    delivery: Delivery.default("queue"),
    /** Absent (null) in events stored before authors were recorded. */
    author: Author.nullable().default(null),
  }),
  event("queue.item-edited", { queueItemId: Id, messageId, text: Text, via: EditVia.optional() }),
  event("queue.item-moved", { queueItemId: Id, messageId, position: PositionKey }),
  event("queue.item-delivery-changed", { queueItemId: Id, messageId, delivery: Delivery }),
  /** Someone typing through `holder`: the item is not claimed before `until` (null: that holder's lock ended). */
  event("queue.item-edit-locked", { queueItemId: Id, messageId, holder: Id, until: z.string().nullable() }),
  /**
   * The lapsed edit locks of `holders` ended by a writer of the log's text, which then puts that
   * text back over their typing: typing made on the log's text before this is refused.
   */
  event("queue.item-typing-revoked", { queueItemId: Id, messageId, holders: z.array(Id) }),
  event("queue.item-removed", { queueItemId: Id, messageId }),
  /** The claim: stored before the agent sees anything; carries the whole dispatch. */
  event("queue.item-send-started", DispatchPayload),
  /** `final`: the item is now `failed`; otherwise it is `pending` again until `retryAt`. */
  event("queue.item-send-failed", {
    queueItemId: Id,
    messageId,
    dispatchId: Id,
    reason: z.string(),
    final: z.boolean(),
    retryAt: z.string().nullable(),
    /** A rate limit (`retryAt` its reset): the attempt does not count, and the queue's hold waits instead of the item. */
    rateLimited: z.boolean().default(false),
  }),
  event("queue.item-requeued", { queueItemId: Id, messageId }),
  event("queue.item-resolved", { queueItemId: Id, messageId, turnId: Id }),
  /** `resumeAt`: the hold ends by itself then (a rate limit's reset); null otherwise. */
  event("queue.paused", { reason: PauseReason, resumeAt: z.string().nullable().default(null) }),
  event("queue.resumed", {}),
  event("queue.mode-changed", { mode: QueueMode }),
  event("turn.started", { turnId: Id, queueItemId: Id }),
  event("turn.ended", { turnId: Id, outcome: TurnOutcome, error: z.string().nullable() }),
  event("message.sent", {
    messageId: Id,
    queueItemId: Id,
    turnId: Id,
    text: Text,
    attachments: Attachments,
    /** Start attempts the message took (the last one started its turn); null in logs from before it was recorded. */
    attempts: z.number().int().positive().nullable().default(null),
  }),
]);
export type DomainEvent = z.infer<typeof DomainEvent>;
export type EventType = DomainEvent["type"];
export type EventOf<T extends EventType> = Extract<DomainEvent, { type: T }>;
export const EVENT_TYPES = DomainEvent.options.map((o) => o.shape.type.value) as EventType[];

/** An event as stored in the log and published on the bus / `thread.events`. */
export type StoredEvent = DomainEvent & {
  seq: string;
  threadId: string;
  workspaceId: string;
  version: number;
  commandId: string;
  actor: string;
  createdAt: string;
};

/** A claim as the agent receives it: a turn to start or a steer into the running one. */
export type MessageDispatch = z.infer<z.ZodObject<typeof DispatchPayload>> & { threadId: string };
/** Stop turn `expectedTurnId`; no message. `queueItemId` is null: no queue item is sent. */
export interface InterruptDispatch {
  threadId: string;
  dispatchId: string;
  kind: "interrupt";
  queueItemId: null;
  expectedTurnId: string;
  runtimeSessionId: string | null;
}
export type Dispatch = MessageDispatch | InterruptDispatch;

/** The dispatch an agent receives, built from the claim event alone. */
export const dispatchOf = (e: StoredEvent & EventOf<"queue.item-send-started">): MessageDispatch => ({
  threadId: e.threadId,
  ...e.payload,
  runtimeSessionId: e.payload.runtimeSessionId ?? null,
});

/** The interrupt dispatch of a `thread.interrupt-requested` event. */
export const interruptDispatchOf = (e: StoredEvent & EventOf<"thread.interrupt-requested">): InterruptDispatch => ({
  threadId: e.threadId,
  dispatchId: e.payload.dispatchId,
  kind: "interrupt",
  queueItemId: null,
  expectedTurnId: e.payload.turnId,
  runtimeSessionId: e.payload.runtimeSessionId,
});
