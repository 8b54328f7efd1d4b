import { z } from "zod";

/** The public limits (docs/contract.md): every id is 1..128 chars, text at most 100,000 chars. */
export const MAX_ID_LENGTH = 128;
export const MAX_TEXT_LENGTH = 100_000;

export const Id = z.string().min(1).max(MAX_ID_LENGTH);
export const Text = z.string().max(MAX_TEXT_LENGTH);
export const MAX_POSITION_LENGTH = 256;
/** A fractional-indexing key; validity beyond shape is checked by the decider. */
export const PositionKey = z.string().min(1).max(MAX_POSITION_LENGTH);

export const Attachment = z.object({
  name: z.string().min(1).max(1024),
  mimeType: z.string().max(255).optional(),
  url: z.string().max(4096).optional(),
  size: z.number().int().nonnegative().optional(),
});
export type Attachment = z.infer<typeof Attachment>;
export const Attachments = z.array(Attachment).max(64);

/** What the user saw when queueing (model, mode, …): snapshotted on the item, opaque to us. */
export const TurnOptions = z
  .object({
    model: z.string().max(256).optional(),
    mode: z.string().max(256).optional(),
  })
  .catchall(z.union([z.string().max(4096), z.number(), z.boolean(), z.null()]));
export type TurnOptions = z.infer<typeof TurnOptions>;

export const Message = z.object({
  messageId: Id,
  text: Text,
  attachments: Attachments.default([]),
});
export type Message = z.infer<typeof Message>;

export const SessionStatus = z.enum(["unknown", "starting", "ready", "running", "stopped", "error"]);
export type SessionStatus = z.infer<typeof SessionStatus>;
/** What an agent may report; `unknown` is only the state before any report. */
export const ReportedSessionStatus = SessionStatus.exclude(["unknown"]);

export const ItemStatus = z.enum(["pending", "sending", "failed"]);
export type ItemStatus = z.infer<typeof ItemStatus>;

export const PauseReason = z.enum(["user", "failure", "interrupted"]);
export type PauseReason = z.infer<typeof PauseReason>;

export const TurnOutcome = z.enum(["completed", "interrupted", "failed"]);
export type TurnOutcome = z.infer<typeof TurnOutcome>;

export const DispatchKind = z.enum(["turn", "steer"]);
export type DispatchKind = z.infer<typeof DispatchKind>;

/**
 * Where an edit was typed. `document`: into the thread's shared document, which therefore
 * already holds the text (set by the document bridge only; the API does not accept it).
 */
export const EditVia = z.enum(["document"]);
export type EditVia = z.infer<typeof EditVia>;

export const Role = z.enum(["user", "agent", "admin"]);
export type Role = z.infer<typeof Role>;
