import { h } from "./dom.js";

/**
 * The page's one polite live region: screen readers read what changed (an item sent or
 * failed, the agent starting a turn, the queue pausing) without moving the user's focus.
 */
export const liveRegion = h("div", { class: "visually-hidden", role: "status", "aria-live": "polite", "aria-atomic": "true", "data-testid": "announcer" });

let last = "";
let clear: ReturnType<typeof setTimeout> | undefined;

export function announce(message: string): void {
  // The same words twice in a row would not be read again: clear, then set.
  if (message === last) liveRegion.textContent = "";
  last = message;
  liveRegion.textContent = message;
  clearTimeout(clear);
  clear = setTimeout(() => (last = ""), 1_000);
}
