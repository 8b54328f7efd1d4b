import type { Command, CommandOf } from "./commands.js";
import { DomainError, refuse } from "./errors.js";
import type { DomainEvent, EventOf } from "./events.js";
import { assertNever } from "./evolve.js";
import { isValidPositionKey, keyBetween, keysBetween } from "./ordering.js";
import { backoffMs, drainBlocker, headPending, isEditLocked, type DrainPolicy } from "./policy.js";
import { MAX_ID_LENGTH, MAX_POSITION_LENGTH } from "./primitives.js";
import type { QueueItemState } from "./queue-item.js";
import { isFrozen, newQueueItem, orderedItems, sendingItem, textHash, type ThreadState } from "./state.js";

export interface DecideContext {
  now: Date;
  policy: DrainPolicy;
}

export type Decision = DomainEvent[] | DomainError;

/**
 * The commands whose decision may claim an item (append `queue.item-send-started`). Whoever
 * must settle something before an item leaves (text typed into it, say) hooks in before
 * these; a property test checks that no other command ever claims.
 */
export const mayClaim = (command: Command): boolean =>
  command.type === "drain.claim" || command.type === "queue.sendNow" || (command.type === "queue.add" && command.sendNow);

/**
 * The queue's rules (docs/design.md, "The queue's rules"), all of them, in one place: given the thread's
 * state and a command, the events that follow, or why the command is refused.
 * An empty list means "nothing to do" (idempotent repeats, ineligible claims).
 */
export function decide(state: ThreadState, command: Command, ctx: DecideContext): Decision {
  if (command.type === "thread.create") return create(state, command);
  if (!state.exists || state.deleted) return refuse("THREAD_NOT_FOUND", `thread ${state.threadId} does not exist`);

  switch (command.type) {
    case "thread.archive":
      return state.archived ? [] : [{ type: "thread.archived", payload: {} }];
    case "thread.delete":
      return [{ type: "thread.deleted", payload: {} }];
    case "thread.rename":
      return state.title === command.title ? [] : [{ type: "thread.renamed", payload: { title: command.title } }];
    case "queue.add":
      return add(state, command, ctx);
    case "queue.edit":
      return withEditable(state, command.queueItemId, (item) => {
        if (command.replaces !== undefined && textHash(item.text) !== command.replaces) {
          return refuse("TEXT_CHANGED", `item ${item.queueItemId}'s text changed since this edit was made`);
        }
        return item.text === command.text
          ? []
          : [{ type: "queue.item-edited", payload: { queueItemId: item.queueItemId, text: command.text, ...(command.via && { via: command.via }) } }];
      });
    case "queue.move":
      return withEditable(state, command.queueItemId, (item) => move(state, item, command.to));
    case "queue.editLock":
      return withEditable(state, command.queueItemId, (item) => {
        const { holder, forMs } = command;
        if (forMs === 0 && !(holder in item.editLocks)) return [];
        const until = forMs === 0 ? null : new Date(ctx.now.getTime() + forMs).toISOString();
        return [{ type: "queue.item-edit-locked", payload: { queueItemId: item.queueItemId, holder, until } }];
      });
    case "queue.remove":
      return withEditable(state, command.queueItemId, (item) => [
        { type: "queue.item-removed", payload: { queueItemId: item.queueItemId } },
        ...releaseFailureHold(state, item),
      ]);
    case "queue.retry":
      return withItem(state, command.queueItemId, (item) => {
        if (item.status === "pending") return [];
        if (item.status !== "failed") return refuse("ITEM_NOT_FAILED", `item ${item.queueItemId} is ${item.status}, not failed`);
        return [{ type: "queue.item-requeued", payload: { queueItemId: item.queueItemId } }, ...releaseFailureHold(state, item)];
      });
    case "queue.sendNow":
      return withItem(state, command.queueItemId, (item) => sendNow(state, item, ctx.now));
    case "queue.pause":
      return state.paused && state.pauseReason === "user" ? [] : [{ type: "queue.paused", payload: { reason: "user" } }];
    case "queue.resume":
      return state.paused ? [{ type: "queue.resumed", payload: {} }] : [];
    case "thread.interrupt":
      return interrupt(state);
    case "agent.session": {
      const { status, error, runtimeSessionId } = command;
      const same = state.session.status === status && state.session.error === error &&
        (runtimeSessionId === undefined || runtimeSessionId === state.session.runtimeSessionId);
      return same
        ? []
        : [{ type: "session.changed", payload: { status, error, ...(runtimeSessionId === undefined ? {} : { runtimeSessionId }) } }];
    }
    case "agent.turnStarted":
      return withItem(state, command.queueItemId, (item) => turnStarted(state, item, command.turnId));
    case "agent.turnStartFailed":
      return withItem(state, command.queueItemId, (item) => startFailed(state, item, command, ctx));
    case "agent.turnEnded":
      return turnEnded(state, command);
    case "drain.claim": {
      if (drainBlocker(state, ctx.now) !== null) return [];
      return [claim(state, headPending(state)!, "turn", null, state.version + 1)];
    }
    case "drain.timeout": {
      const item = state.items.get(command.queueItemId);
      if (!item || item.status !== "sending" || item.dispatchId !== command.dispatchId) return [];
      return fail(state, item, "timeout: the agent did not start the turn in time");
    }
    default:
      return assertNever(command);
  }
}

function create(state: ThreadState, c: CommandOf<"thread.create">): Decision {
  if (!state.exists) return [{ type: "thread.created", payload: { workspaceId: c.workspaceId, title: c.title } }];
  if (state.workspaceId === c.workspaceId && !state.deleted) return [];
  return refuse("THREAD_EXISTS", `thread id ${state.threadId} is taken`);
}

function add(state: ThreadState, c: CommandOf<"queue.add">, ctx: DecideContext): Decision {
  // A retry of a message already accepted gets its item back, even once the thread is archived.
  const known = state.messages.get(c.message.messageId);
  if (known) {
    if (known.textHash !== textHash(c.message.text)) {
      return refuse("MESSAGE_ID_REUSED", `message ${c.message.messageId} was queued with another text`);
    }
    return [];
  }
  if (state.archived) return refuse("THREAD_ARCHIVED", "the thread is archived");
  // An item id names one message for ever: reusing it would overwrite a queued item, or
  // make a sent one look queued again.
  if (state.itemIds.has(c.queueItemId)) {
    return refuse("ITEM_EXISTS", `item id ${c.queueItemId} is already taken`);
  }
  const position = c.sendNow
    ? keyBetween(null, state.positions.first)
    : keyBetween(state.positions.last, null);
  const added: EventOf<"queue.item-added"> = {
    type: "queue.item-added",
    payload: {
      queueItemId: c.queueItemId,
      messageId: c.message.messageId,
      text: c.message.text,
      attachments: c.message.attachments,
      options: c.options,
      position,
    },
  };
  if (!c.sendNow) return [added];
  // A send-now message the agent cannot take yet simply waits at the head.
  const item = newQueueItem(added.payload, ctx.now.toISOString());
  const now = sendNow(state, item, ctx.now, 1);
  return now instanceof DomainError ? [added] : [added, ...now];
}

function move(state: ThreadState, item: QueueItemState, to: CommandOf<"queue.move">["to"]): Decision {
  if ("position" in to) {
    if (!isValidPositionKey(to.position)) return refuse("INVALID_POSITION", `"${to.position}" is not a fractional position key`);
    return to.position === item.position ? [] : [moved(item, to.position)];
  }
  const others = orderedItems(state).filter((i) => i.queueItemId !== item.queueItemId);
  if (to.afterId === item.queueItemId) return refuse("INVALID_MOVE", "an item cannot move after itself");
  const index = to.afterId === null ? -1 : others.findIndex((i) => i.queueItemId === to.afterId);
  if (index === -1 && to.afterId !== null) return refuse("ITEM_NOT_FOUND", `item ${to.afterId} is not in the queue`);
  const current = orderedItems(state);
  const at = current.indexOf(item);
  if (current[at - 1] === others[index] && current[at + 1] === others[index + 1]) return [];
  return placeAfter(others, index, item);
}

/**
 * Moves `item` right after `others[index]` (-1: to the head). Neighbours with distinct keys
 * leave room between them. Neighbours sharing one key (two devices wrote it at once; ids
 * order them) leave none, so that group is spread over fresh keys around the moved item.
 * A gap bisected so often that its key would outgrow PositionKey's limit (about 1,500
 * moves into the same gap) gets the whole queue re-keyed instead.
 */
function placeAfter(others: QueueItemState[], index: number, item: QueueItemState): DomainEvent[] {
  const before = others[index];
  const after = others[index + 1];
  if (!before || !after || before.position < after.position) {
    const key = keyBetween(before?.position ?? null, after?.position ?? null);
    if (key.length <= MAX_POSITION_LENGTH) return [moved(item, key)];
    return spread([...others.slice(0, index + 1), item, ...others.slice(index + 1)], null, null);
  }
  const tied = before.position;
  if (before.queueItemId < item.queueItemId && item.queueItemId < after.queueItemId) return [moved(item, tied)];
  const first = others.findIndex((i) => i.position === tied);
  const end = others.findLastIndex((i) => i.position === tied) + 1;
  const group = [...others.slice(first, index + 1), item, ...others.slice(index + 1, end)];
  return spread(group, others[first - 1]?.position ?? null, others[end]?.position ?? null);
}

/**
 * Fresh ascending keys for `group`, in its order, between `lo` and `hi`. The item being sent,
 * if in the group, keeps its key: nothing may change a sending item.
 */
function spread(group: QueueItemState[], lo: string | null, hi: string | null): DomainEvent[] {
  const anchor = group.findIndex(isFrozen);
  const fixed = group[anchor]?.position;
  const keys =
    fixed === undefined
      ? keysBetween(lo, hi, group.length)
      : [...keysBetween(lo, fixed, anchor), fixed, ...keysBetween(fixed, hi, group.length - anchor - 1)];
  return group.flatMap((i, k) => (i.position === keys[k] ? [] : [moved(i, keys[k]!)]));
}

const moved = (item: QueueItemState, position: string): DomainEvent => ({
  type: "queue.item-moved",
  payload: { queueItemId: item.queueItemId, position },
});

/** `preceding`: events the caller emits before these (the claim's version depends on it). */
function sendNow(state: ThreadState, item: QueueItemState, now: Date, preceding = 0): Decision {
  if (state.archived) return refuse("THREAD_ARCHIVED", "the thread is archived");
  if (item.status === "sending") return refuse("ITEM_SENDING", `item ${item.queueItemId} is already being sent`);
  if (isEditLocked(item, now)) return refuse("ITEM_EDIT_LOCKED", `someone is typing into item ${item.queueItemId}; it goes once they stop`);
  if (sendingItem(state)) return refuse("DISPATCH_IN_FLIGHT", "another item is being sent; wait for its turn to start");
  const { status, activeTurnId } = state.session;
  const kind = activeTurnId ? "steer" : status === "ready" ? "turn" : null;
  if (!kind) return refuse("SESSION_NOT_READY", `the agent session is ${status}`);
  const prelude: DomainEvent[] = [
    ...(item.status === "failed" ? [{ type: "queue.item-requeued", payload: { queueItemId: item.queueItemId } } as const] : []),
    // Send now is how a user continues after an interrupt or a failure.
    ...(state.paused && state.pauseReason !== "user" ? [{ type: "queue.resumed", payload: {} } as const] : []),
  ];
  const version = state.version + preceding + prelude.length + 1;
  return [...prelude, claim(state, { ...item, attempts: item.status === "failed" ? 0 : item.attempts }, kind, activeTurnId, version)];
}

/** `version`: the thread version the claim event will have. */
function claim(state: ThreadState, item: QueueItemState, kind: "turn" | "steer", expectedTurnId: string | null, version: number): DomainEvent {
  const attempt = item.attempts + 1;
  return {
    type: "queue.item-send-started",
    payload: {
      queueItemId: item.queueItemId,
      dispatchId: dispatchIdOf(item.queueItemId, version),
      kind,
      expectedTurnId,
      runtimeSessionId: state.session.runtimeSessionId,
      attempt,
      message: { messageId: item.messageId, text: item.text, attachments: item.attachments },
      options: item.options,
    },
  };
}

function turnStarted(state: ThreadState, item: QueueItemState, turnId: string): Decision {
  if (item.status !== "sending") return refuse("ITEM_NOT_SENDING", `item ${item.queueItemId} is ${item.status}, not being sent`);
  if (item.dispatchKind === "steer" && state.session.activeTurnId !== turnId) {
    return refuse("STEER_TURN_MISMATCH", `the steer was for turn ${state.session.activeTurnId}, not ${turnId}`);
  }
  const sent: DomainEvent[] = [
    { type: "queue.item-resolved", payload: { queueItemId: item.queueItemId, turnId } },
    {
      type: "message.sent",
      payload: {
        messageId: item.messageId,
        queueItemId: item.queueItemId,
        turnId,
        text: item.text,
        attachments: item.attachments,
        attempts: item.attempts,
      },
    },
  ];
  return item.dispatchKind === "steer"
    ? sent
    : [{ type: "turn.started", payload: { turnId, queueItemId: item.queueItemId } }, ...sent];
}

function startFailed(
  state: ThreadState,
  item: QueueItemState,
  c: CommandOf<"agent.turnStartFailed">,
  ctx: DecideContext,
): Decision {
  if (item.status !== "sending") return refuse("ITEM_NOT_SENDING", `item ${item.queueItemId} is ${item.status}, not being sent`);
  const retry = c.retryable && item.dispatchKind === "turn" && item.attempts < ctx.policy.maxAttempts;
  if (!retry) return fail(state, item, c.reason);
  // The agent may know better than our backoff when it can take the turn (a rate limit's reset).
  const backoffAt = ctx.now.getTime() + backoffMs(item.attempts, ctx.policy);
  const retryAt = new Date(Math.max(backoffAt, c.retryAt ? Date.parse(c.retryAt) : 0)).toISOString();
  return [
    {
      type: "queue.item-send-failed",
      payload: { queueItemId: item.queueItemId, dispatchId: item.dispatchId!, reason: c.reason, final: false, retryAt },
    },
  ];
}

/** A permanent failure marks the item failed and holds the queue: one outage, one failed item. */
function fail(state: ThreadState, item: QueueItemState, reason: string): DomainEvent[] {
  return [
    {
      type: "queue.item-send-failed",
      payload: { queueItemId: item.queueItemId, dispatchId: item.dispatchId!, reason, final: true, retryAt: null },
    },
    ...(state.paused ? [] : [{ type: "queue.paused", payload: { reason: "failure" } } as const]),
  ];
}

/** One request per running turn: repeating it while the agent stops the turn changes nothing. */
function interrupt(state: ThreadState): Decision {
  const turnId = state.session.activeTurnId;
  if (!turnId) return refuse("NO_ACTIVE_TURN", "no turn is running on this thread");
  if (state.session.interruptRequested === turnId) return [];
  const dispatchId = dispatchIdOf(`${state.threadId}.interrupt`, state.version + 1);
  return [{ type: "thread.interrupt-requested", payload: { turnId, dispatchId, runtimeSessionId: state.session.runtimeSessionId } }];
}

function turnEnded(state: ThreadState, c: CommandOf<"agent.turnEnded">): Decision {
  if (state.session.activeTurnId !== c.turnId) {
    return refuse("TURN_NOT_ACTIVE", `turn ${c.turnId} is not the active turn (${state.session.activeTurnId ?? "none"})`);
  }
  const ended: DomainEvent = { type: "turn.ended", payload: { turnId: c.turnId, outcome: c.outcome, error: c.error } };
  const pauseFor = c.outcome === "interrupted" ? "interrupted" : c.outcome === "failed" ? "failure" : null;
  return pauseFor && !state.paused ? [ended, { type: "queue.paused", payload: { reason: pauseFor } }] : [ended];
}

/**
 * Unique per claim, for ever: a retried item restarts at attempt 1, so an attempt-based id
 * would repeat and a stale timeout of the earlier dispatch would fail the new one. The
 * claim's thread version never repeats. Kept within the 128-character id limit.
 */
function dispatchIdOf(queueItemId: string, version: number): string {
  const id = `${queueItemId}.v${version}`;
  return id.length <= MAX_ID_LENGTH ? id : `${queueItemId.slice(0, 80)}~${textHash(queueItemId)}.v${version}`;
}

/** Retrying or removing the last failed item releases a failure hold. */
function releaseFailureHold(state: ThreadState, item: QueueItemState): DomainEvent[] {
  if (item.status !== "failed" || !state.paused || state.pauseReason !== "failure") return [];
  const otherFailed = state.items.some((i) => i.status === "failed" && i.queueItemId !== item.queueItemId);
  return otherFailed ? [] : [{ type: "queue.resumed", payload: {} }];
}

function withItem(state: ThreadState, id: string, f: (item: QueueItemState) => Decision): Decision {
  const item = state.items.get(id);
  return item ? f(item) : refuse("ITEM_NOT_FOUND", `item ${id} is not in the queue`);
}

/** Edit, move and remove are allowed while pending or failed, refused while sending. */
function withEditable(state: ThreadState, id: string, f: (item: QueueItemState) => Decision): Decision {
  return withItem(state, id, (item) =>
    isFrozen(item) ? refuse("ITEM_SENDING", `item ${id} is being sent`) : f(item),
  );
}
