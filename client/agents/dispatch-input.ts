import { TurnStartError, type Dispatch } from "../agent.js";

/** Past this an attachment is refused before it reaches the agent (models take a few MB at most). */
export const DEFAULT_MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024;

/**
 * Refuses, before the agent sees it, a turn the agent cannot take as queued: an option this
 * agent has no way to honour (silently dropping it would run a different turn than the user
 * asked for), or an attachment over the size the agent accepts. The refusal is permanent
 * (the item fails with this reason and the queue holds), and the runtime goes on.
 */
export function checkDispatchInput(
  dispatch: Dispatch,
  agent: { name: string; options: readonly string[]; maxAttachmentBytes: number },
): void {
  const unknown = Object.entries(dispatch.options)
    .filter(([name, value]) => value !== undefined && value !== null && !agent.options.includes(name))
    .map(([name]) => name);
  if (unknown.length > 0) {
    const takes = agent.options.length > 0 ? `it takes ${agent.options.join(", ")}` : "it takes none";
    throw new TurnStartError(`${agent.name} cannot take the option${unknown.length > 1 ? "s" : ""} ${unknown.map((n) => `"${n}"`).join(", ")} (${takes})`, {
      retryable: false,
    });
  }
  for (const a of dispatch.message.attachments) {
    if ((a.size ?? 0) > agent.maxAttachmentBytes) {
      throw new TurnStartError(`${agent.name} cannot take the attachment "${a.name}": ${a.size} bytes, over its limit of ${agent.maxAttachmentBytes}`, {
        retryable: false,
      });
    }
  }
}
