import { z } from "zod";
import {
  Author, Delivery, EditVia, Id, Message, PositionKey, QueueMode, ReportedSessionStatus, storableString, Text, TurnOptions, TurnOutcome,
} from "./primitives.js";

/**
 * Every command the decider accepts. User and agent commands arrive through tRPC (whose
 * input schemas are derived from these); `drain.*` commands are issued only by reactors.
 * Ids the decider needs (new queue item ids) are chosen by the caller, so decide stays pure.
 */
const command = <T extends string, P extends z.ZodRawShape>(type: T, shape: P) =>
  z.object({ type: z.literal(type), ...shape });

export const ThreadCreate = command("thread.create", {
  workspaceId: Id,
  title: storableString(512).default(""),
});
export const ThreadArchive = command("thread.archive", {});
export const ThreadDelete = command("thread.delete", {});
/** A thread's title is the people's label for it, so it may change; its id never does. */
export const ThreadRename = command("thread.rename", { title: storableString(512) });

export const QueueAdd = command("queue.add", {
  /** Candidate id for a new item; ignored when `messageId` is already queued. */
  queueItemId: Id,
  message: Message,
  options: TurnOptions.default({}),
  delivery: Delivery.default("queue"),
  /**
   * Who queues it: the procedures fill it from the caller's token, never from client input.
   * Null only for commands no person issued (a reactor's, a test's).
   */
  author: Author.nullable().default(null),
});
/**
 * `replaces` (collab only, like `via`): the `textHash` of the log's text this edit was typed
 * on. Every edit made through the document carries it: a replica's document may lack a text
 * the log took meanwhile (the bus lost it, or it is still being written), and its text must
 * not land over that one: refused `TEXT_CHANGED`. `basedOn`: the thread version at which the
 * typist's replica knew the log had that text; typing revoked after it (`queue.revokeTyping`)
 * is refused the same way.
 */
export const QueueEdit = command("queue.edit", {
  queueItemId: Id,
  text: Text,
  via: EditVia.optional(),
  replaces: z.string().max(32).optional(),
  basedOn: z.number().int().min(0).optional(),
});
/** `afterId: null` moves to the head; `position` (from the Yjs document) places exactly. */
export const QueueMove = command("queue.move", {
  queueItemId: Id,
  to: z.union([
    z.object({ afterId: Id.nullable() }),
    z.object({ position: PositionKey }),
  ]),
});
export const QueueRemove = command("queue.remove", { queueItemId: Id });
export const QueueRetry = command("queue.retry", { queueItemId: Id });
/** Send this item next: the same as setting its delivery to `steer`. */
export const QueueSendNow = command("queue.sendNow", { queueItemId: Id });
/** How a waiting item goes; a failed item asked to steer or interrupt is queued again. */
export const QueueSetDelivery = command("queue.setDelivery", { queueItemId: Id, delivery: Delivery });
export const QueueSetMode = command("queue.setMode", { mode: QueueMode });
export const QueuePause = command("queue.pause", {});
/**
 * Collab: someone is typing into the item through `holder` (a server instance), so it is
 * not claimed for `forMs` from now; `forMs: 0` ends that holder's lock, never another's.
 * A lock also lapses by itself, so an instance that vanishes holds nothing. Issued by the
 * collab layer from presence and keystrokes (docs/design.md, "Edit lock"); the API does
 * not accept it.
 */
export const QueueEditLock = command("queue.editLock", { queueItemId: Id, holder: Id, forMs: z.number().int().min(0).max(60_000) });
/**
 * Collab: a writer of the log's text is about to put it (its `textHash`: `replaces`) back over
 * typing whose edit locks lapsed (their holders' commits stuck, or the holders gone). The
 * lapsed locks of holders other than `holder` end, and typing made on the log's text before
 * this is refused from now on, so a commit stuck past its lock's end cannot land after the
 * devices were shown the older text. Nothing while any other holder's lock is live.
 */
export const QueueRevokeTyping = command("queue.revokeTyping", { queueItemId: Id, holder: Id, replaces: z.string().max(32) });
/** Stop the running turn: the runtime gets an `interrupt` dispatch and ends it `interrupted`. */
export const ThreadInterrupt = command("thread.interrupt", {});
export const QueueResume = command("queue.resume", {});

export const AgentSession = command("agent.session", {
  status: ReportedSessionStatus,
  /** With status `rate-limited`: when the agent can take a turn again; the queue holds until then. */
  retryAt: z.iso.datetime({ offset: true }).optional(),
  error: storableString(4096).nullable().default(null),
  /** The agent's own session/thread id; omitted keeps the one stored, so a restarted runtime can resume it. */
  runtimeSessionId: Id.optional(),
});
/**
 * `dispatchId` (on every report about a dispatch): the claim the report is about. A report for
 * an earlier claim of the same item (a runtime that woke after its dispatch timed out and the
 * item was claimed again) is refused instead of being taken for the current one. The SDK always
 * sends it; a caller that leaves it out reports on whichever claim is current.
 */
const DispatchOf = { dispatchId: Id.optional() };
export const AgentTurnStarted = command("agent.turnStarted", { queueItemId: Id, turnId: Id, ...DispatchOf });
export const AgentTurnStartFailed = command("agent.turnStartFailed", {
  queueItemId: Id,
  ...DispatchOf,
  reason: storableString(4096, 1),
  retryable: z.boolean(),
  /** When the agent can take a turn again (a rate limit's reset): the item stays pending and the queue holds until then. */
  retryAt: z.iso.datetime({ offset: true }).optional(),
});
export const AgentTurnEnded = command("agent.turnEnded", {
  turnId: Id,
  /**
   * The item the turn took, when its start was never reported (a handler that returned before
   * it reported one): the turn starts and ends in this one report, one append instead of two.
   */
  queueItemId: Id.optional(),
  ...DispatchOf,
  outcome: TurnOutcome,
  error: storableString(4096).nullable().default(null),
});

/** Reactor: claim the head item if the thread is eligible; no events when it is not. */
export const DrainClaim = command("drain.claim", {});
/** Reactor: a rate-limit hold's time has come; no events when the hold is gone or now ends later. */
export const DrainResume = command("drain.resume", {});
/** Reactor: the agent did not start the dispatched turn in time. */
export const DrainTimeout = command("drain.timeout", { queueItemId: Id, dispatchId: Id });

export const Command = z.discriminatedUnion("type", [
  ThreadCreate, ThreadArchive, ThreadDelete, ThreadRename, ThreadInterrupt,
  QueueAdd, QueueEdit, QueueMove, QueueRemove, QueueRetry, QueueSendNow, QueueSetDelivery, QueueSetMode, QueuePause, QueueResume, QueueEditLock, QueueRevokeTyping,
  AgentSession, AgentTurnStarted, AgentTurnStartFailed, AgentTurnEnded,
  DrainClaim, DrainResume, DrainTimeout,
]);
export type Command = z.infer<typeof Command>;
export type CommandInput = z.input<typeof Command>;
export type CommandType = Command["type"];
export type CommandOf<T extends CommandType> = Extract<Command, { type: T }>;
