import type { Command, CommandOf } from "./commands.js";
import { DomainError, refuse } from "./errors.js";
import type { DomainEvent, EventOf } from "./events.js";
import { assertNever, evolve } from "./evolve.js";
import { isValidPositionKey, keyBetween, keysBetween } from "./ordering.js";
import { backoffMs, drainStep, rateLimitOver, type DrainPolicy } from "./policy.js";
import { MAX_ID_LENGTH, MAX_POSITION_LENGTH, type Delivery, type DispatchKind, type PauseReason } from "./primitives.js";
import type { QueueItemState } from "./queue-item.js";
import { isFrozen, orderedItems, textHash, type ThreadState } from "./state.js";

export interface DecideContext {
  now: Date;
  policy: DrainPolicy;
}

export type Decision = DomainEvent[] | DomainError;

/**
 * The commands whose decision may claim an item (append `queue.item-send-started`). Whoever
 * must settle something before an item leaves (text typed into it, say) hooks in before
 * these; a property test checks that no other command ever claims.
 *
 * Besides the drain's own claim: an add, a turn's end and a session report claim in the
 * same decision when they leave the thread able to send (`thenDrain`), so the common path
 * (a message to an idle agent, the next item after a turn) is one append and one commit.
 */
export const mayClaim = (command: Command): boolean =>
  command.type === "drain.claim" ||
  command.type === "queue.sendNow" ||
  command.type === "queue.add" ||
  command.type === "agent.turnEnded" ||
  command.type === "agent.session" ||
  (command.type === "queue.setDelivery" && command.delivery !== "queue");

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
        // Typed text replaces the log's text it was typed on, and only that one: a document
        // edit naming none could land over an edit its document never held. API edits: last writer wins.
        if ((command.via === "document" || command.replaces !== undefined) && command.replaces !== textHash(item.text)) {
          return refuse("TEXT_CHANGED", `item ${item.queueItemId}'s text changed since this edit was made`);
        }
        // A writer put the log's text back over typing after this typing's base: it is gone from the documents.
        if (command.via === "document" && (command.basedOn ?? 0) < item.typingRevokedAt) {
          return refuse("TEXT_CHANGED", `typing on item ${item.queueItemId} was revoked since this edit was made`);
        }
        return item.text === command.text
          ? []
          : [{ type: "queue.item-edited", payload: { ...ids(item), text: command.text, ...(command.via && { via: command.via }) } }];
      });
    case "queue.move":
      return withEditable(state, command.queueItemId, (item) => move(state, item, command.to));
    case "queue.editLock":
      return withEditable(state, command.queueItemId, (item) => {
        const { holder, forMs } = command;
        if (forMs === 0 && !(holder in item.editLocks)) return [];
        const until = forMs === 0 ? null : new Date(ctx.now.getTime() + forMs).toISOString();
        return [{ type: "queue.item-edit-locked", payload: { ...ids(item), holder, until } }];
      });
    case "queue.revokeTyping":
      return withEditable(state, command.queueItemId, (item) => {
        if (command.replaces !== textHash(item.text)) return refuse("TEXT_CHANGED", `item ${item.queueItemId}'s text changed since its writer read it`);
        const others = Object.entries(item.editLocks).filter(([holder]) => holder !== command.holder);
        // A live lock is typing being committed now: the writer waits for it, nothing is revoked.
        if (others.length === 0 || others.some(([, until]) => Date.parse(until) > ctx.now.getTime())) return [];
        return [{ type: "queue.item-typing-revoked", payload: { ...ids(item), holders: others.map(([holder]) => holder) } }];
      });
    case "queue.remove":
      return withEditable(state, command.queueItemId, (item) => [
        { type: "queue.item-removed", payload: ids(item) },
        ...releaseFailureHold(state, item),
      ]);
    case "queue.retry":
      return withItem(state, command.queueItemId, (item) => {
        if (item.status === "pending") return [];
        if (item.status !== "failed") return refuse("ITEM_NOT_FAILED", `item ${item.queueItemId} is ${item.status}, not failed`);
        return [{ type: "queue.item-requeued", payload: ids(item) }, ...releaseFailureHold(state, item)];
      });
    case "queue.sendNow":
      return withItem(state, command.queueItemId, (item) => setDelivery(state, item, "steer", ctx));
    case "queue.setDelivery":
      return withItem(state, command.queueItemId, (item) => setDelivery(state, item, command.delivery, ctx));
    case "queue.setMode":
      return setMode(state, command.mode);
    case "queue.pause":
      return state.paused && state.pauseReason === "user" ? [] : [paused("user")];
    case "queue.resume":
      // Also how a user ends a rate-limit hold early.
      return state.paused ? [resumed] : [];
    case "thread.interrupt":
      return interrupt(state);
    case "agent.session":
      return thenDrain(state, session(state, command), ctx);
    case "agent.turnStarted":
      return withSending(state, command, (item) => turnStarted(state, item, command.turnId));
    case "agent.turnStartFailed":
      return withSending(state, command, (item) => startFailed(state, item, command, ctx));
    case "agent.turnEnded":
      return withDecision(endTurn(state, command, ctx), (ended) => thenDrain(state, ended, ctx));
    case "drain.claim":
      return drain(state, ctx.now);
    case "drain.resume":
      return rateLimitOver(state, ctx.now) ? [resumed] : [];
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
  // Nothing is dropped to make room: the caller is told, and its message is not taken.
  if (state.items.size >= ctx.policy.maxQueueItems) {
    return refuse("QUEUE_FULL", `the thread holds its maximum of ${ctx.policy.maxQueueItems} items`);
  }
  // At the tail: a steer or interrupt goes first by its delivery, and after the ones queued before it.
  const added: EventOf<"queue.item-added"> = {
    type: "queue.item-added",
    payload: {
      queueItemId: c.queueItemId,
      messageId: c.message.messageId,
      text: c.message.text,
      attachments: c.message.attachments,
      options: c.options,
      position: keyBetween(state.lastPosition, null),
      delivery: c.delivery,
      author: c.author,
    },
  };
  return thenDrain(state, [added], ctx);
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
  payload: { ...ids(item), position },
});

/**
 * How a waiting item goes. Asking a failed item to steer or interrupt queues it again (that
 * is how a user sends it now); a steer or interrupt goes at once when it can.
 */
function setDelivery(state: ThreadState, item: QueueItemState, delivery: Delivery, ctx: DecideContext): Decision {
  if (state.archived) return refuse("THREAD_ARCHIVED", "the thread is archived");
  if (isFrozen(item)) return refuse("ITEM_SENDING", `item ${item.queueItemId} is already being sent`);
  const again = item.status === "failed" && delivery !== "queue";
  const events: DomainEvent[] = [
    ...(item.delivery === delivery ? [] : [{ type: "queue.item-delivery-changed", payload: { ...ids(item), delivery } } as const]),
    ...(again ? [{ type: "queue.item-requeued", payload: ids(item) } as const, ...releaseFailureHold(state, item)] : []),
  ];
  return events.length === 0 || delivery === "queue" ? events : thenDrain(state, events, ctx);
}

/** Switching to `auto` lets a step hold go: it only held because of the mode. */
function setMode(state: ThreadState, mode: CommandOf<"queue.setMode">["mode"]): Decision {
  if (state.mode === mode) return [];
  const changed: DomainEvent = { type: "queue.mode-changed", payload: { mode } };
  return mode === "auto" && state.paused && state.pauseReason === "step" ? [changed, resumed] : [changed];
}

/** What the drain does now (policy's `drainStep`): a claim, an interrupt for an interrupt item, or nothing. */
function drain(state: ThreadState, now: Date): DomainEvent[] {
  const step = drainStep(state, now);
  if (typeof step === "string") return [];
  if (step.kind === "interrupt") return [interruptRequested(state, step.turnId)];
  const lifted = step.lift ? [resumed] : [];
  return [...lifted, claim(state, step.item, step.dispatch, step.expectedTurnId, state.version + lifted.length + 1)];
}

/**
 * `events`, then what the drain does on the state they make, in the same decision: the
 * claim (or the interrupt an interrupt item asks for) the drain reactor would otherwise
 * append right after. Nothing more when the thread cannot send (`drainStep` says why).
 */
function thenDrain(state: ThreadState, events: DomainEvent[], ctx: DecideContext): DomainEvent[] {
  // A repeat that changes nothing stays a no-op: the drain reactor looks at the thread anyway.
  if (events.length === 0) return events;
  return [...events, ...drain(evolveAll(state, events, ctx), ctx.now)];
}

/** The state once `events` are appended (with the versions and time the append will give them). */
function evolveAll(state: ThreadState, events: readonly DomainEvent[], ctx: DecideContext): ThreadState {
  const createdAt = ctx.now.toISOString();
  return events.reduce((s, e, k) => evolve(s, { ...e, version: state.version + k + 1, createdAt }), state);
}

/** `version`: the thread version the claim event will have. */
function claim(state: ThreadState, item: QueueItemState, kind: DispatchKind, expectedTurnId: string | null, version: number): DomainEvent {
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
    { type: "queue.item-resolved", payload: { ...ids(item), turnId } },
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
  const failed = (retryAt: string | null, rateLimited = false): DomainEvent => ({
    type: "queue.item-send-failed",
    payload: { ...ids(item), dispatchId: item.dispatchId!, reason: c.reason, final: false, retryAt, rateLimited },
  });
  // A rate limit (the agent says when it can take a turn): the item stays pending without
  // spending an attempt, and the queue holds until then; the hold, not the item, waits, so
  // a user's resume ends it.
  if (c.retryAt) return [failed(c.retryAt, true), ...rateLimitHold(state, c.retryAt)];
  const retry = c.retryable && item.dispatchKind === "turn" && item.attempts < ctx.policy.maxAttempts;
  if (!retry) return fail(state, item, c.reason);
  return [failed(new Date(ctx.now.getTime() + backoffMs(item.attempts, ctx.policy)).toISOString())];
}

/**
 * The hold a rate limit puts on the queue until `resumeAt` (null: until the agent reports
 * ready or a user resumes). A hold that waits for a person (the user's pause, a failure, a
 * step, an interrupt) stays as it is: that person's resume lets the queue go.
 */
function rateLimitHold(state: ThreadState, resumeAt: string | null): DomainEvent[] {
  if (state.paused && state.pauseReason !== "rate-limited") return [];
  if (state.paused && state.resumeAt === resumeAt) return [];
  return [paused("rate-limited", resumeAt)];
}

function session(state: ThreadState, c: CommandOf<"agent.session">): DomainEvent[] {
  const { status, error, runtimeSessionId } = c;
  const same = state.session.status === status && state.session.error === error &&
    (runtimeSessionId === undefined || runtimeSessionId === state.session.runtimeSessionId);
  const changed: DomainEvent[] = same
    ? []
    : [{ type: "session.changed", payload: { status, error, ...(runtimeSessionId === undefined ? {} : { runtimeSessionId }) } }];
  if (status === "rate-limited") return [...changed, ...rateLimitHold(state, c.retryAt ?? null)];
  // The agent can take turns again: its rate limit is over, whatever time it gave.
  const over = status === "ready" && state.paused && state.pauseReason === "rate-limited";
  return over ? [...changed, resumed] : changed;
}

/** A permanent failure marks the item failed and holds the queue: one outage, one failed item. */
function fail(state: ThreadState, item: QueueItemState, reason: string): DomainEvent[] {
  return [
    {
      type: "queue.item-send-failed",
      payload: { ...ids(item), dispatchId: item.dispatchId!, reason, final: true, retryAt: null, rateLimited: false },
    },
    ...(state.paused ? [] : [paused("failure")]),
  ];
}

/** One request per running turn: repeating it while the agent stops the turn changes nothing. */
function interrupt(state: ThreadState): Decision {
  const turnId = state.session.activeTurnId;
  if (!turnId) return refuse("NO_ACTIVE_TURN", "no turn is running on this thread");
  if (state.session.interruptRequested === turnId) return [];
  return [interruptRequested(state, turnId)];
}

const interruptRequested = (state: ThreadState, turnId: string): DomainEvent => ({
  type: "thread.interrupt-requested",
  payload: { turnId, dispatchId: dispatchIdOf(`${state.threadId}.interrupt`, state.version + 1), runtimeSessionId: state.session.runtimeSessionId },
});

/** A turn's end; named with its item while no turn runs, the turn's start too (both in one report). */
function endTurn(state: ThreadState, c: CommandOf<"agent.turnEnded">, ctx: DecideContext): Decision {
  if (c.queueItemId === undefined || state.session.activeTurnId === c.turnId) return turnEnded(state, c);
  return withSending(state, { ...c, queueItemId: c.queueItemId }, (item) =>
    withDecision(turnStarted(state, item, c.turnId), (started) =>
      withDecision(turnEnded(evolveAll(state, started, ctx), c), (ended) => [...started, ...ended]),
    ),
  );
}

function turnEnded(state: ThreadState, c: CommandOf<"agent.turnEnded">): Decision {
  if (state.session.activeTurnId !== c.turnId) {
    return refuse("TURN_NOT_ACTIVE", `turn ${c.turnId} is not the active turn (${state.session.activeTurnId ?? "none"})`);
  }
  const ended: DomainEvent = { type: "turn.ended", payload: { turnId: c.turnId, outcome: c.outcome, error: c.error } };
  const pauseFor = holdAfter(c.outcome, state.mode);
  return pauseFor && !state.paused ? [ended, paused(pauseFor)] : [ended];
}

/** The hold a turn's end puts on the queue: stopped or failed turns hold; in step mode, every turn does. */
function holdAfter(outcome: CommandOf<"agent.turnEnded">["outcome"], mode: ThreadState["mode"]): PauseReason | null {
  switch (outcome) {
    case "interrupted":
      return "interrupted";
    case "failed":
      return "failure";
    case "completed":
      return mode === "step" ? "step" : null;
    default:
      return assertNever(outcome);
  }
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
  return otherFailed ? [] : [resumed];
}

const resumed: DomainEvent = { type: "queue.resumed", payload: {} };
const paused = (reason: PauseReason, resumeAt: string | null = null): DomainEvent => ({ type: "queue.paused", payload: { reason, resumeAt } });
/** The ids every item event carries. */
const ids = (item: QueueItemState) => ({ queueItemId: item.queueItemId, messageId: item.messageId });

function withDecision(decision: Decision, f: (events: DomainEvent[]) => Decision): Decision {
  return decision instanceof DomainError ? decision : f(decision);
}

function withItem(state: ThreadState, id: string, f: (item: QueueItemState) => Decision): Decision {
  const item = state.items.get(id);
  return item ? f(item) : refuse("ITEM_NOT_FOUND", `item ${id} is not in the queue`);
}

/**
 * A runtime's report about a dispatch: its item must be `sending` under that very claim. A
 * report for an earlier claim (its runtime was paused or cut off past the dispatch timeout, and
 * the item was claimed again since) must not start, fail or end the current one.
 */
function withSending(state: ThreadState, c: { queueItemId: string; dispatchId?: string | undefined }, f: (item: QueueItemState) => Decision): Decision {
  return withItem(state, c.queueItemId, (item) => {
    if (item.status !== "sending") return refuse("ITEM_NOT_SENDING", `item ${item.queueItemId} is ${item.status}, not being sent`);
    if (c.dispatchId !== undefined && item.dispatchId !== c.dispatchId) {
      return refuse("ITEM_NOT_SENDING", `item ${item.queueItemId} is no longer sent by dispatch ${c.dispatchId} (now ${item.dispatchId})`);
    }
    return f(item);
  });
}

/** Edit, move and remove are allowed while pending or failed, refused while sending. */
function withEditable(state: ThreadState, id: string, f: (item: QueueItemState) => Decision): Decision {
  return withItem(state, id, (item) =>
    isFrozen(item) ? refuse("ITEM_SENDING", `item ${id} is being sent`) : f(item),
  );
}
