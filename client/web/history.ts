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

/** "3 min" since `iso`, for a turn still running. */
export function since(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/**
 * What the thread already sent, newest first, a page at a time: each message with how its
 * turn ended and when. `refresh` reads again as many entries as are shown, so a turn that
 * ends updates its entry in place.
 */
export class History {
  readonly element: HTMLElement;
  private readonly list = h("ol", { class: "history", "aria-label": "Sent messages" });
  private readonly more = h("button", { type: "button", class: "secondary", "data-action": "older", hidden: true }, "Show older");
  private readonly empty = h("p", { class: "empty" }, "Nothing sent yet.");
  private entries: HistoryEntry[] = [];
  private cursor: string | null = null;
  private inFlight: Promise<void> | null = null;
  private again = false;
  private closed = false;

  constructor(
    private readonly client: TurnqueueClient,
    private readonly threadId: string,
    private readonly onEntries: (entries: HistoryEntry[]) => void,
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
    this.onEntries(this.entries);
    this.list.replaceChildren(...this.entries.map(entryView));
    this.empty.hidden = this.entries.length > 0;
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
  return h("li", { class: "sent", "data-outcome": e.outcome, "data-message": e.messageId },
    h("div", { class: "sent-head" },
      h("span", { class: "chip outcome", "data-outcome": e.outcome }, OUTCOME_LABEL[e.outcome]),
      h("time", { datetime: e.sentAt, title: `sent ${dateTimeOf(e.sentAt)}${ended}` }, dateTimeOf(e.sentAt)),
    ),
    text,
    toggle,
    e.error ? h("p", { class: "reason" }, e.error) : null,
  );
}

/**
 * The turn the agent works on now, at the top of the queue: what was sent, since when, and
 * the agent's own session id.
 */
export class NowCard {
  readonly element = h("section", { class: "now", "aria-label": "Running now", "data-testid": "now", hidden: true });
  private running: HistoryEntry | null = null;
  private sessionId: string | null = null;
  private readonly tick = setInterval(() => this.render(), 15_000);

  show(running: HistoryEntry | null, sessionId: string | null): void {
    this.running = running;
    this.sessionId = sessionId;
    this.render();
  }

  close(): void {
    clearInterval(this.tick);
  }

  private render(): void {
    const r = this.running;
    this.element.hidden = !r;
    if (!r) return this.element.replaceChildren();
    const start = r.startedAt ?? r.sentAt;
    this.element.replaceChildren(
      h("div", { class: "now-head" },
        h("span", { class: "chip outcome", "data-outcome": "running" }, "running now"),
        h("span", { class: "now-since" }, "since ", h("time", { datetime: start }, timeOf(start)), ` (${since(start)})`),
      ),
      h("p", { class: "sent-text clamped" }, r.text),
      this.sessionId ? h("p", { class: "now-session" }, "agent session ", h("code", {}, this.sessionId)) : "",
    );
  }
}
