import { h } from "./dom.js";
import { timeOf } from "./history.js";

/** "1:05" (or "1:02:05") left until `at`; never below zero. */
export function leftUntil(at: string, now = Date.now()): string {
  const s = Math.max(0, Math.ceil((Date.parse(at) - now) / 1000));
  const two = (n: number) => String(n).padStart(2, "0");
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  return hours > 0 ? `${hours}:${two(minutes)}:${two(s % 60)}` : `${minutes}:${two(s % 60)}`;
}

/**
 * A hold that ends by itself (the agent's rate limit): the time it ends and what is left,
 * counted down each second while shown. The live region says it once when the hold starts
 * (see Board.speak), not every second: the numbers here are for eyes, not ears.
 */
export class Countdown {
  readonly element = h("span", { class: "chip countdown", "data-testid": "resume-at", hidden: true });
  private readonly left = h("span", { class: "left", "aria-hidden": "true" });
  private readonly time = h("time");
  private until: string | null = null;
  private tick: ReturnType<typeof setInterval> | undefined;

  constructor() {
    this.element.append("resumes at ", this.time, " (", this.left, ")");
  }

  /** Counts down to `until` (an ISO time), or hides when null. */
  show(until: string | null): void {
    if (until === this.until) return;
    this.until = until;
    clearInterval(this.tick);
    this.element.hidden = until === null;
    if (until === null) return;
    this.time.dateTime = until;
    this.time.textContent = timeOf(until);
    const render = () => {
      this.left.textContent = `in ${leftUntil(until)}`;
      if (Date.parse(until) <= Date.now()) clearInterval(this.tick);
    };
    render();
    this.tick = setInterval(render, 1_000);
  }

  close(): void {
    clearInterval(this.tick);
  }
}
