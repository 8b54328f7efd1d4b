import type { inferRouterOutputs } from "@trpc/server";
import type { TurnqueueClient } from "../index.js";
import type { AppRouter } from "../router-types.js";
import { h } from "./dom.js";

type Outputs = inferRouterOutputs<AppRouter>;
export type ThreadSummary = Outputs["thread"]["list"]["items"][number];
type Changes = Outputs["thread"]["changes"] extends AsyncIterable<infer T> ? T : never;

/** A thread whose agent cannot take a turn now, as the list says it. */
const OFFLINE: Partial<Record<ThreadSummary["sessionStatus"], string>> = { unknown: "no agent", stopped: "agent offline", error: "agent error" };

/** The marks a thread's row carries: what someone glancing at the list must notice. */
export function marksOf(t: ThreadSummary): { kind: string; label: string }[] {
  const marks: { kind: string; label: string }[] = [];
  if (t.archived) marks.push({ kind: "archived", label: "archived" });
  if (t.sessionStatus === "running") marks.push({ kind: "running", label: "running" });
  if (t.failedCount > 0) marks.push({ kind: "failed", label: `${t.failedCount} failed` });
  if (t.paused) marks.push({ kind: "paused", label: t.pauseReason && t.pauseReason !== "user" ? `paused: ${t.pauseReason}` : "paused" });
  const offline = OFFLINE[t.sessionStatus];
  if (offline) marks.push({ kind: "offline", label: offline });
  return marks;
}

const shortId = (threadId: string) => threadId.replace(/^th_/, "").slice(-6);
const created = (iso: string) => new Date(iso).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

/**
 * The workspace's threads, live over `thread.changes` (no timer): each with its queue
 * length and state marks. Two threads with one title show when each was created and the
 * end of its id. Archived threads sink to the end.
 */
export class ThreadList {
  readonly element = h("ul", { class: "thread-list", "aria-label": "Threads", "data-testid": "threads" });
  private readonly threads = new Map<string, ThreadSummary>();
  private readonly listeners = new Set<(t: ThreadSummary | null, threadId: string) => void>();
  private active: string | null = null;
  private readonly subscription: { unsubscribe(): void };

  constructor(client: TurnqueueClient, onError: (error: unknown) => void) {
    this.subscription = client.thread.changes.subscribe(undefined, {
      onData: (changes) => this.apply(changes),
      onError,
    });
  }

  get(threadId: string): ThreadSummary | undefined {
    return this.threads.get(threadId);
  }

  /** Called with a thread's new summary (null: deleted) whenever it changes. */
  onChange(listener: (t: ThreadSummary | null, threadId: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setActive(threadId: string | null): void {
    this.active = threadId;
    for (const a of this.element.querySelectorAll<HTMLAnchorElement>("a")) {
      const on = a.dataset.thread === threadId;
      a.classList.toggle("active", on);
      if (on) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
  }

  close(): void {
    this.subscription.unsubscribe();
    this.listeners.clear();
  }

  private apply(changes: Changes): void {
    const before = new Map(this.threads);
    if (changes.complete) this.threads.clear();
    for (const t of changes.threads) this.threads.set(t.threadId, t);
    for (const id of changes.removed) this.threads.delete(id);
    this.render();
    for (const id of new Set([...before.keys(), ...this.threads.keys()])) {
      const now = this.threads.get(id) ?? null;
      if (now !== (before.get(id) ?? null)) for (const listener of this.listeners) listener(now, id);
    }
  }

  private render(): void {
    const all = [...this.threads.values()].sort(
      (a, b) => Number(a.archived) - Number(b.archived) || b.createdAt.localeCompare(a.createdAt) || b.threadId.localeCompare(a.threadId),
    );
    // A re-render must not take the focus from someone moving through the list by keyboard.
    const focused = (document.activeElement as HTMLElement | null)?.closest<HTMLElement>("a[data-thread]")?.dataset.thread;
    const titles = new Map<string, number>();
    for (const t of all) titles.set(label(t), (titles.get(label(t)) ?? 0) + 1);
    this.element.replaceChildren(
      ...all.map((t) => {
        const twin = (titles.get(label(t)) ?? 0) > 1;
        const marks = marksOf(t);
        const on = t.threadId === this.active;
        return h("li", {},
          h("a", {
              href: `#/thread/${encodeURIComponent(t.threadId)}`,
              class: on ? "active" : null,
              "aria-current": on ? "page" : null,
              "data-thread": t.threadId,
              "data-archived": t.archived ? "true" : null,
            },
            h("span", { class: "thread-line" },
              h("span", { class: "thread-title" }, label(t)),
              t.queueLength > 0 && h("span", { class: "count", "aria-label": `${t.queueLength} queued` }, String(t.queueLength)),
            ),
            twin && h("span", { class: "thread-twin", "data-testid": "twin" }, `#${shortId(t.threadId)} · ${created(t.createdAt)}`),
            marks.length > 0 && h("span", { class: "marks" }, ...marks.map((m) => h("span", { class: "mark", "data-mark": m.kind }, m.label))),
          ),
        );
      }),
    );
    if (all.length === 0) this.element.append(h("li", { class: "placeholder" }, "No threads yet."));
    if (focused && this.element.isConnected) {
      this.element.querySelector<HTMLElement>(`a[data-thread="${CSS.escape(focused)}"]`)?.focus();
    }
  }
}

const label = (t: ThreadSummary) => t.title || "Untitled thread";
