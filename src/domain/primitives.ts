import { z } from "zod";
import { MAX_TEXT_LENGTH } from "./limits.js";

/** The public limits (docs/contract.md): every id is 1..128 chars, text at most 100,000 chars. */
export const MAX_ID_LENGTH = 128;
export { MAX_TEXT_LENGTH };

/**
 * NUL (U+0000), or half of a surrogate pair without its other half. Neither can be stored:
 * PostgreSQL text and jsonb refuse both (SQLSTATE 22P05 / 22021), and a lone surrogate is
 * not text in any other encoding either. Matched on UTF-16 code units (no `u` flag).
 */
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
export const UNSTORABLE_MESSAGE = "must not contain NUL (U+0000) or an unpaired surrogate";
export const isStorable = (s: string): boolean => !UNSTORABLE.test(s);

/**
 * Every string a command carries: refused here, as bad input of that one command, rather
 * than by the database, where it would fail the statement and every command grouped into it.
 */
export const storableString = (max: number, min = 0) => z.string().min(min).max(max).refine(isStorable, UNSTORABLE_MESSAGE);

export const Id = storableString(MAX_ID_LENGTH, 1);
export const Text = storableString(MAX_TEXT_LENGTH);
export const MAX_POSITION_LENGTH = 256;
/** A fractional-indexing key; validity beyond shape is checked by the decider. */
export const PositionKey = storableString(MAX_POSITION_LENGTH, 1);

export const Attachment = z.object({
  name: storableString(1024, 1),
  mimeType: storableString(255).optional(),
  url: storableString(4096).optional(),
  size: z.number().int().nonnegative().optional(),
});
export type Attachment = z.infer<typeof Attachment>;
export const Attachments = z.array(Attachment).max(64);

/** What the user saw when queueing (model, mode, …): snapshotted on the item, opaque to us. */
export const MAX_OPTION_NAME_LENGTH = 256;
export const TurnOptions = z
  .object({
    model: storableString(256).optional(),
    mode: storableString(256).optional(),
  })
  .catchall(z.union([storableString(4096), z.number(), z.boolean(), z.null()]))
  // The names are free, so they are checked like every other string (they are stored too).
  .refine(
    (options) => Object.keys(options).every((name) => name.length <= MAX_OPTION_NAME_LENGTH && isStorable(name)),
    `option names are at most ${MAX_OPTION_NAME_LENGTH} characters and ${UNSTORABLE_MESSAGE}`,
  );
export type TurnOptions = z.infer<typeof TurnOptions>;

export const Message = z.object({
  messageId: Id,
  text: Text,
  attachments: Attachments.default([]),
});
export type Message = z.infer<typeof Message>;

/**
 * `rate-limited`: the agent cannot take a turn before a time it reported; the queue holds
 * until then (pauseReason `rate-limited`), and the session counts as ready again once that
 * hold ends, whether by the clock or by a user's resume.
 */
export const SessionStatus = z.enum(["unknown", "starting", "ready", "running", "stopped", "error", "rate-limited"]);
export type SessionStatus = z.infer<typeof SessionStatus>;
/** What an agent may report; `unknown` is only the state before any report. */
export const ReportedSessionStatus = SessionStatus.exclude(["unknown"]);

export const ItemStatus = z.enum(["pending", "sending", "failed"]);
export type ItemStatus = z.infer<typeof ItemStatus>;

/**
 * Why the queue holds: the user paused it, an item failed, the user stopped a turn, step
 * mode ended a turn, or the agent is rate limited (this one ends by itself at `resumeAt`).
 */
export const PauseReason = z.enum(["user", "failure", "interrupted", "step", "rate-limited"]);
export type PauseReason = z.infer<typeof PauseReason>;

export const TurnOutcome = z.enum(["completed", "interrupted", "failed"]);
export type TurnOutcome = z.infer<typeof TurnOutcome>;

/**
 * How an item goes (docs/design.md, "The queue's rules"): `queue` waits for its turn,
 * `steer` goes into the running turn (or as the next turn when idle), `interrupt` stops the
 * running turn and then goes first.
 */
export const Delivery = z.enum(["queue", "steer", "interrupt"]);
export type Delivery = z.infer<typeof Delivery>;

/** `step`: the queue holds after each completed turn until someone lets the next item go. */
export const QueueMode = z.enum(["auto", "step"]);
export type QueueMode = z.infer<typeof QueueMode>;

/** A display name a client gives for the person queueing (the token's `sub` is who it is). */
export const MAX_AUTHOR_NAME_LENGTH = 128;
/** Who queued an item: the caller's token subject, never client input, and an optional display name. */
export const Author = z.object({ sub: Id, name: storableString(MAX_AUTHOR_NAME_LENGTH, 1).optional() });
export type Author = z.infer<typeof Author>;

/** What a claim asks of the agent: a new turn, or a message into the running one. */
export const DispatchKind = z.enum(["turn", "steer"]);
export type DispatchKind = z.infer<typeof DispatchKind>;

/**
 * Where an edit was typed. `document`: into the thread's shared document, which therefore
 * already holds the text (set by the document bridge only; the API does not accept it).
 */
export const EditVia = z.enum(["document"]);
export type EditVia = z.infer<typeof EditVia>;

export const Role = z.enum(["user", "agent", "admin", "viewer"]);
export type Role = z.infer<typeof Role>;
