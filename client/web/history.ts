import type { inferRouterOutputs } from "@trpc/server";
import type { TurnqueueClient } from "../index.js";
import type { AppRouter } from "../router-types.js";
import { h } from "./dom.js";

export type HistoryEntry = inferRouterOutputs<AppRouter>["thread"]["history"]["items"][number];

const PAGE = 20;
const OUTCOME_LABEL: Record<HistoryEntry["outcome"], string> = {
  running: "running",
  completed: "completed",
  interrupted: "stopped",
  failed: "turn failed",
};
/** Past this, an entry shows its first lines and a button to read the rest. */
const LONG_TEXT = 280;

export const timeOf = (iso: string) => new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dateTimeOf = (iso: string) => new Date(iso).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

/** "2 attempts": how many start attempts a message took; null when it was not recorded. */
export const attemptsOf = (n: number | null): string | null => (n === null ? null : `${n} attempt${n === 1 ? "" : "s"}`);

/** "3 min" since `iso`, for a turn still running. */
export function since(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/**
 * What the thread already sent, newest first, a page at a time: each message with how its
 * turn ended, when, and how many attempts it took. The running turn's messages are handed
 * to `onRunning` (the board shows them above the queue) and not listed here, so a turn
 * shows once. `refresh` reads again as many entries as are read, so a turn that ends moves
 * from the running card into the list.
 */
export class History {
  readonly element: HTMLElement;
  private readonly list = h("ol", { class: "history", "aria-label": "Sent messages" });
  private readonly more = h("button", { type: "button", class: "secondary", "data-action": "older", hidden: true }, "Show older");
  private readonly empty = h("p", { class: "empty" });
  private entries: HistoryEntry[] = [];
  private cursor: string | null = null;
  private inFlight: Promise<void> | null = null;
  private again = false;
  private closed = false;

  constructor(
    private readonly client: TurnqueueClient,
    private readonly threadId: string,
    private readonly onRunning: (running: HistoryEntry[]) => void,
    private readonly report: (error: unknown) => void,
  ) {
    this.more.addEventListener("click", () => void this.older().catch(report));
    this.element = h("section", { class: "history-section", "aria-labelledby": `history-${threadId}` },
      h("h2", { id: `history-${threadId}` }, "Sent"),
      this.list,
      this.empty,
      this.more,
    );
  }

  /** Reads the shown entries again; calls made while one runs fold into one more read. */
  refresh(): Promise<void> {
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    this.inFlight = (async () => {
      do {
        this.again = false;
        const page = await this.client.thread.history.query({ threadId: this.threadId, limit: Math.min(200, Math.max(PAGE, this.entries.length)) });
        if (this.closed) return;
        this.entries = page.items;
        this.cursor = page.nextCursor;
        this.render();
      } while (this.again);
    })()
      .catch(this.report)
      .finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  close(): void {
    this.closed = true;
  }

  private async older(): Promise<void> {
    if (!this.cursor) return;
    const page = await this.client.thread.history.query({ threadId: this.threadId, limit: PAGE, cursor: this.cursor });
    const known = new Set(this.entries.map((e) => e.messageId));
    this.entries = [...this.entries, ...page.items.filter((e) => !known.has(e.messageId))];
    this.cursor = page.nextCursor;
    this.render();
  }

  private render(): void {
    // The newest running turn is the one going on (its steered messages are newer than the
    // one that started it); an older turn the agent never reported ending stays listed.
    const current = this.entries.find((e) => e.outcome === "running")?.turnId;
    const running = this.entries.filter((e) => e.outcome === "running" && e.turnId === current);
    const listed = this.entries.filter((e) => !running.includes(e));
    this.onRunning(running);
    this.list.replaceChildren(...listed.map(entryView));
    this.empty.textContent = running.length > 0 ? "Nothing sent before the running turn." : "Nothing sent yet.";
    this.empty.hidden = listed.length > 0;
    this.more.hidden = this.cursor === null;
  }
}

function entryView(e: HistoryEntry): HTMLLIElement {
  const text = h("p", { class: "sent-text" }, e.text);
  const long = e.text.length > LONG_TEXT || e.text.split("\n").length > 4;
  if (long) text.classList.add("clamped");
  const toggle = long
    ? h("button", { type: "button", class: "link", "aria-expanded": "false", onclick: () => {
        const open = text.classList.toggle("clamped") === false;
        toggle!.setAttribute("aria-expanded", String(open));
        toggle!.textContent = open ? "Show less" : "Show all";
      } }, "Show all")
    : null;
  const ended = e.endedAt ? `, ended ${timeOf(e.endedAt)}` : "";
  const attempts = attemptsOf(e.attempts);
  return h("li", { class: "sent", "data-outcome": e.outcome, "data-message": e.messageId },
    h("div", { class: "sent-head" },
      h("span", { class: "chip outcome", "data-outcome": e.outcome }, OUTCOME_LABEL[e.outcome]),
      h("time", { datetime: e.sentAt, title: `sent ${dateTimeOf(e.sentAt)}${ended}` }, dateTimeOf(e.sentAt)),
      attempts && h("span", { class: "attempts" }, attempts),
    ),
    text,
    toggle,
    e.error ? h("p", { class: "reason" }, e.error) : null,
  );
}

/**
 * The turn the agent works on now, at the top of the queue: what was sent (the message that
 * started it, then any steered in), since when, and the agent's own session id.
 */
export class NowCard {
  readonly element = h("section", { class: "now", "aria-label": "Running now", "data-testid": "now", hidden: true });
  /** The running turn's messages, newest first as the history reads them. */
  private running: HistoryEntry[] = [];
  private sessionId: string | null = null;
  private readonly tick = setInterval(() => this.render(), 15_000);

  show(running: HistoryEntry[], sessionId: string | null): void {
    this.running = running;
    this.sessionId = sessionId;
    this.render();
  }

  close(): void {
    clearInterval(this.tick);
  }

  private render(): void {
    const [first, ...steered] = [...this.running].reverse();
    this.element.hidden = !first;
    if (!first) return this.element.replaceChildren();
    const start = first.startedAt ?? first.sentAt;
    const message = (e: HistoryEntry, label: string | null) => {
      const attempts = e.attempts !== null && e.attempts > 1 ? attemptsOf(e.attempts) : null;
      return h("li", { "data-message": e.messageId },
        label || attempts ? h("p", { class: "now-note" }, [label, attempts].filter(Boolean).join(" · ")) : null,
        h("p", { class: "sent-text clamped" }, e.text),
      );
    };
    this.element.replaceChildren(
      h("div", { class: "now-head" },
        h("span", { class: "chip outcome", "data-outcome": "running" }, "running now"),
        h("span", { class: "now-since" }, "since ", h("time", { datetime: start }, timeOf(start)), ` (${since(start)})`),
      ),
      h("ol", { class: "now-messages" }, message(first, null), ...steered.map((e) => message(e, `steered in at ${timeOf(e.sentAt)}`))),
      this.sessionId ? h("p", { class: "now-session" }, "agent session ", h("code", {}, this.sessionId)) : "",
    );
  }
}
