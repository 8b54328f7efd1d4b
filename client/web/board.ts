import { isFrozen, type PauseReason, type Peer, type QueueEntry, type SessionStatus, type ThreadQueue, type TurnqueueClient } from "../index.js";
import type * as Y from "yjs";
import { announce } from "./announce.js";
import { Countdown } from "./countdown.js";
import { ask } from "./dialog.js";
import { h, reportTo } from "./dom.js";
import { attemptsOf, History, NowCard, timeOf, type HistoryEntry } from "./history.js";
import { bindTextarea } from "./text-binding.js";
import type { ThreadSummary } from "./thread-list.js";
import { touchDrag } from "./touch-drag.js";

const STATUS_LABEL: Record<QueueEntry["status"], string> = { pending: "queued", sending: "sending", failed: "failed" };
/** How an item goes, as its picker offers it (Steer is what "Send now" does). */
const DELIVERY_LABEL: Record<QueueEntry["delivery"], string> = { queue: "Queue", steer: "Steer (send now)", interrupt: "Interrupt" };
const PAUSE_LABEL: Record<PauseReason, string> = {
  user: "paused",
  failure: "paused (failure)",
  interrupted: "paused (interrupted)",
  step: "step: waiting for Next",
  "rate-limited": "paused (rate limit)",
};
const SESSION_LABEL: Record<SessionStatus, string> = {
  unknown: "no agent yet",
  starting: "agent starting",
  ready: "agent ready",
  running: "agent working",
  stopped: "agent stopped",
  error: "agent error",
  "rate-limited": "agent rate limited",
};

/**
 * One thread's queue, live: the composer, the ordered items (drag to reorder, type to
 * edit together), their status and actions, the agent session and who else is here.
 */
export class Board {
  readonly element: HTMLElement;
  private readonly queue: ThreadQueue;
  private readonly rows = new Map<string, Row>();
  private readonly list = h("ol", { class: "queue", "aria-label": "Queue" });
  /** Messages written while offline: on this device only until the connection is back. */
  private readonly outbox = h("ol", { class: "queue outbox", "aria-label": "Waiting for connection", "data-testid": "outbox" });
  private readonly empty = h("p", { class: "empty" }, "Nothing queued. Messages you write while the agent is busy wait here.");
  private readonly error = h("p", { class: "error", role: "alert", hidden: true });
  private readonly title = h("h1", { class: "title" });
  private readonly session = h("span", { class: "chip session", "data-testid": "session" });
  private readonly paused = h("span", { class: "chip paused", "data-testid": "paused", hidden: true });
  private readonly archived = h("span", { class: "chip archived", "data-testid": "archived", hidden: true }, "archived");
  private readonly archiveButton = h("button", { type: "button", class: "secondary small", "data-action": "archive" }, "Archive");
  /** Pause, Resume, or Next when step mode holds the queue after a turn: one button, the hold's way out. */
  private readonly pauseButton = h("button", { type: "button", class: "secondary", "data-action": "pause" });
  /** Step mode: the queue holds after each turn until someone presses Next. */
  private readonly modeButton = h("button", { type: "button", class: "secondary toggle", "data-action": "step-mode", "aria-pressed": "false", title: "Hold the queue after each turn until Next" }, "Step mode");
  private readonly countdown = new Countdown();
  /** Shown while the agent works on a turn: stops it (the turn ends interrupted, the queue holds). */
  private readonly stopButton = h("button", { type: "button", class: "secondary", "data-action": "stop", hidden: true }, "Stop");
  private readonly connection = h("span", { class: "connection", "data-testid": "connection" });
  private readonly peers = h("ul", { class: "peers", "data-testid": "peers", "aria-label": "Also here" });
  private readonly now = new NowCard();
  private readonly history: History;
  private runtimeSessionId: string | null = null;
  private running: HistoryEntry[] = [];
  /** What was last announced about the thread, so only changes are read out. */
  private spoken: { session?: SessionStatus; paused?: string; mode?: string; statuses: Map<string, string>; deliveries: Map<string, string> } = {
    statuses: new Map(),
    deliveries: new Map(),
  };
  private lastVersion = -1;
  private dragged: string | null = null;
  /** Wraps a user action: its failure (a refused move, a lost connection) shows on the board. */
  private readonly act: (f: () => Promise<unknown> | void) => () => void;

  constructor(private readonly client: TurnqueueClient, private readonly threadId: string, private readonly me: string) {
    this.queue = client.openThreadQueue(threadId, { presence: { name: me } });
    const report = reportTo(this.error);
    this.history = new History(client, threadId, (entries) => this.showRunning(entries), report);
    const act = (this.act = (f) => () => {
      this.error.hidden = true;
      Promise.resolve().then(f).catch(report);
    });

    const draft = h("textarea", { name: "text", rows: 2, placeholder: "Write a follow-up… (Ctrl+Enter queues it)", "aria-label": "New message" });
    const submit = (delivery: "queue" | "steer") =>
      act(async () => {
        const text = draft.value.trim();
        if (!text) return;
        // Offline, the message waits in the outbox (shown below the queue) until it is sent.
        const sent = this.queue.add(text, { delivery });
        draft.value = "";
        await sent.catch((error: unknown) => {
          draft.value ||= text;
          throw error;
        });
      });
    draft.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) submit("queue")();
    });
    const composer = h(
      "form",
      { class: "composer", onsubmit: (e: Event) => (e.preventDefault(), submit("queue")()) },
      draft,
      h("div", { class: "composer-actions" },
        h("button", { type: "submit" }, "Queue"),
        h("button", { type: "button", class: "secondary", "data-action": "send-now-draft", onclick: submit("steer") }, "Send now"),
      ),
    );
    this.pauseButton.addEventListener("click", act(() => (this.queue.state.paused ? this.queue.resume() : this.queue.pause())));
    this.stopButton.addEventListener("click", act(() => this.queue.interrupt()));
    this.modeButton.addEventListener("click", act(() => this.queue.setMode(this.queue.state.mode === "step" ? "auto" : "step")));

    this.title.textContent = threadId;
    client.thread.get.query({ threadId }).then(
      (t) => {
        this.title.textContent = t.title || "Untitled thread";
        this.runtimeSessionId = t.session.runtimeSessionId;
        void this.history.refresh();
      },
      (error: unknown) => {
        report(error);
        // Missing, deleted or another workspace's (the server does not say which): nothing to show.
        if ((error as { data?: { code?: string } }).data?.code === "NOT_FOUND") {
          this.destroy();
          this.element.replaceChildren(h("p", { class: "error", role: "alert" }, `There is no thread "${threadId}" here.`));
        }
      },
    );

    this.archiveButton.addEventListener("click", act(() => this.archive()));
    const threadActions = h("div", { class: "thread-actions", role: "group", "aria-label": "Thread" },
      h("button", { type: "button", class: "secondary small", "data-action": "rename", onclick: act(() => this.rename()) }, "Rename"),
      this.archiveButton,
      h("button", { type: "button", class: "danger small", "data-action": "delete", onclick: act(() => this.delete()) }, "Delete"),
    );
    this.element = h(
      "section",
      { class: "board", "data-thread": threadId },
      h("header", { class: "board-head" },
        h("div", { class: "board-title" }, this.title, this.connection),
        threadActions,
        h("div", { class: "board-meta" },
          this.session, this.archived, this.paused, this.countdown.element, this.pauseButton, this.stopButton, this.modeButton, this.peers,
        ),
      ),
      composer,
      this.error,
      this.now.element,
      h("h2", { class: "visually-hidden" }, "Queue"),
      this.list,
      this.outbox,
      this.empty,
      this.history.element,
    );

    this.list.addEventListener("dragover", (e) => this.dragOver(e));
    this.list.addEventListener("drop", (e) => {
      e.preventDefault();
      const move = this.dropped(e);
      if (move) act(() => this.queue.move(move.id, move.afterId))();
    });
    this.list.addEventListener("dragleave", () => this.clearDropMarks());

    this.queue.on("change", () => this.render());
    this.queue.on("peers", (peers) => this.renderPeers(peers));
    this.queue.on("status", () => this.renderConnection());
    this.queue.on("refused", (entry, error) => report(new Error(`"${entry.text}" was not queued: ${(error as Error).message}`)));
    this.render();
    this.renderPeers(this.queue.peers);
    this.renderConnection();
  }

  destroy(): void {
    for (const row of this.rows.values()) row.unbind();
    this.queue.close();
    this.history.close();
    this.now.close();
    this.countdown.close();
  }

  /** The thread's summary changed (thread.changes): title, and whatever was sent or ended since. */
  threadChanged(summary: ThreadSummary): void {
    this.title.textContent = summary.title || "Untitled thread";
    this.archived.hidden = !summary.archived;
    this.archiveButton.hidden = summary.archived;
    if (summary.version === this.lastVersion) return;
    this.lastVersion = summary.version;
    void this.history.refresh();
    if (summary.sessionStatus !== "unknown") {
      void this.client.thread.get.query({ threadId: this.threadId }).then((t) => {
        if (t.session.runtimeSessionId === this.runtimeSessionId) return;
        this.runtimeSessionId = t.session.runtimeSessionId;
        this.now.show(this.running, this.runtimeSessionId);
      }, () => undefined);
    }
  }

  private showRunning(running: HistoryEntry[]): void {
    this.running = running;
    this.now.show(this.running, this.runtimeSessionId);
  }

  private async rename(): Promise<void> {
    const title = await ask({ title: "Rename thread", confirm: "Rename", field: { label: "Thread title", value: this.title.textContent ?? "", maxlength: 512 } });
    if (title === null || !title.trim()) return;
    await this.client.thread.rename.mutate({ threadId: this.threadId, title: title.trim() });
    this.title.textContent = title.trim();
    announce(`Thread renamed to ${title.trim()}`);
  }

  private async archive(): Promise<void> {
    const ok = await ask({ title: "Archive this thread?", body: "It stays readable, but nothing more can be queued on it. This cannot be undone.", confirm: "Archive" });
    if (!ok) return;
    await this.client.thread.archive.mutate({ threadId: this.threadId });
    announce("Thread archived");
  }

  private async delete(): Promise<void> {
    const ok = await ask({ title: "Delete this thread?", body: "Its queue and history are gone for everyone, and nothing queued is sent. This cannot be undone.", confirm: "Delete", danger: true });
    if (!ok) return;
    await this.client.thread.delete.mutate({ threadId: this.threadId });
    announce("Thread deleted");
    location.hash = "";
  }

  /** Reads out what changed: the agent starting or ending work, a pause, an item failing or leaving. */
  private speak(): void {
    const { session, paused, pauseReason, mode, resumeAt } = this.queue.state;
    const said: string[] = [];
    if (this.spoken.session !== undefined && this.spoken.session !== session) said.push(SESSION_LABEL[session]);
    const modeSaid = `step mode ${mode === "step" ? "on" : "off"}`;
    if (this.spoken.mode !== undefined && this.spoken.mode !== modeSaid) said.push(modeSaid);
    const pause = !paused
      ? "queue running"
      : pauseReason === "step"
        ? "turn done: the queue waits for Next"
        : pauseReason === "rate-limited"
          ? `agent rate limited: the queue resumes ${resumeAt ? `at ${timeOf(resumeAt)}` : "when the agent is ready"}`
          : `queue paused${pauseReason && pauseReason !== "user" ? ` (${pauseReason})` : ""}`;
    if (this.spoken.paused !== undefined && this.spoken.paused !== pause) said.push(pause);
    const deliveries = new Map(this.queue.entries.map((e) => [e.id, e.delivery] as const));
    for (const e of this.queue.entries) {
      const was = this.spoken.deliveries.get(e.id);
      if (was !== undefined && was !== e.delivery) said.push(`item set to ${DELIVERY_LABEL[e.delivery].toLowerCase()}`);
    }
    const statuses = new Map(this.queue.entries.map((e) => [e.id, e.status] as const));
    for (const e of this.queue.entries) {
      const was = this.spoken.statuses.get(e.id);
      if (was === undefined || was === e.status) continue;
      if (e.status === "failed") said.push(`item failed: ${e.failureReason ?? "no reason given"}`);
      else if (was === "sending" && e.status === "pending" && e.failureReason) said.push(`attempt ${e.attempts} failed: ${e.failureReason}`);
      else said.push(`item ${STATUS_LABEL[e.status]}`);
    }
    for (const [id, was] of this.spoken.statuses) if (!statuses.has(id) && was === "sending") said.push("item sent");
    this.spoken = { session, paused: pause, mode: modeSaid, statuses, deliveries };
    if (said.length > 0) announce(said.join(". "));
  }

  private render(): void {
    const { session, paused, pauseReason, mode, resumeAt } = this.queue.state;
    this.session.textContent = SESSION_LABEL[session];
    this.session.dataset.status = session;
    this.paused.hidden = !paused;
    this.paused.textContent = PAUSE_LABEL[pauseReason ?? "user"];
    this.paused.dataset.reason = pauseReason ?? "user";
    const next = paused && pauseReason === "step";
    this.pauseButton.textContent = next ? "Next" : paused ? "Resume" : "Pause";
    this.pauseButton.dataset.action = next ? "next" : paused ? "resume" : "pause";
    this.modeButton.setAttribute("aria-pressed", String(mode === "step"));
    this.countdown.show(paused && pauseReason === "rate-limited" ? resumeAt : null);
    this.stopButton.hidden = session !== "running";
    this.speak();

    const entries = this.queue.entries;
    const live = new Set(entries.map((e) => e.id));
    for (const [id, row] of this.rows) {
      if (live.has(id)) continue;
      row.unbind();
      row.element.remove();
      this.rows.delete(id);
    }
    const focused = document.activeElement instanceof HTMLElement && this.list.contains(document.activeElement) ? document.activeElement : null;
    const selection = focused instanceof HTMLTextAreaElement ? [focused.selectionStart, focused.selectionEnd] as const : null;
    entries.forEach((entry, index) => {
      const row = this.rows.get(entry.id) ?? this.createRow(entry);
      row.update(entry);
      // Moves only misplaced nodes; a moved node loses focus, given back below.
      if (this.list.children[index] !== row.element) this.list.insertBefore(row.element, this.list.children[index] ?? null);
    });
    if (focused?.isConnected && document.activeElement !== focused) {
      focused.focus();
      if (selection) (focused as HTMLTextAreaElement).setSelectionRange(...selection);
    }
    const queued = new Set(entries.map((e) => e.messageId));
    const waiting = this.queue.outbox.filter((e) => !queued.has(e.messageId));
    this.outbox.replaceChildren(
      ...waiting.map((e) =>
        h("li", { class: "item outbox-item", "data-message": e.messageId },
          h("p", { class: "outbox-text" }, e.text),
          h("span", { class: "chip status", "data-status": "waiting" }, "waiting for connection"),
        ),
      ),
    );
    this.empty.hidden = entries.length > 0 || waiting.length > 0;
    this.renderPeers(this.queue.peers);
  }

  private createRow(entry: QueueEntry): Row {
    const row = new Row(entry, this.queue, this.me, this.act, (id) => (this.dragged = id), {
      move: (x, y) => this.markDrop(document.elementFromPoint(x, y), y),
      drop: (x, y) => {
        const move = this.placeAt(document.elementFromPoint(x, y), y);
        if (move) this.act(() => this.queue.move(move.id, move.afterId))();
      },
    });
    this.rows.set(entry.id, row);
    return row;
  }

  private renderPeers(peers: Peer[]): void {
    this.peers.replaceChildren(
      ...peers.map((p) =>
        h("li", { class: "peer", title: p.editing ? `${p.name} is editing` : `${p.name} is looking`, style: `--peer: ${p.color}` }, initials(p.name)),
      ),
    );
    for (const row of this.rows.values()) row.showEditors(peers.filter((p) => p.editing === row.id));
  }

  private renderConnection(): void {
    const status = this.queue.status;
    this.connection.dataset.status = status;
    this.connection.textContent = status === "connected" ? "live" : status === "closed" ? `offline: ${this.queue.closeReason}` : status;
  }

  private dragOver(e: DragEvent): void {
    if (this.markDrop(e.target as Element | null, e.clientY)) e.preventDefault();
  }

  /** Marks where the dragged item would land over `over`; false when it would land nowhere. */
  private markDrop(over: Element | null, clientY: number): boolean {
    const target = this.rowAt(over);
    if (!this.dragged || !target) return false;
    this.clearDropMarks();
    target.element.classList.add(this.isUpperHalf(clientY, target) ? "drop-before" : "drop-after");
    return true;
  }

  /** Which item was dropped and after which item it goes (null: the head). */
  private dropped(e: DragEvent): { id: string; afterId: string | null } | null {
    return this.placeAt(e.target as Element | null, e.clientY);
  }

  private placeAt(over: Element | null, clientY: number): { id: string; afterId: string | null } | null {
    this.clearDropMarks();
    const target = this.rowAt(over);
    const id = this.dragged;
    this.dragged = null;
    if (!id || !target || target.id === id) return null;
    const others = this.queue.entries.filter((x) => x.id !== id);
    const index = others.findIndex((x) => x.id === target.id);
    return { id, afterId: this.isUpperHalf(clientY, target) ? (others[index - 1]?.id ?? null) : target.id };
  }

  private rowAt(over: Element | null): Row | undefined {
    const li = over?.closest<HTMLElement>("li.item");
    return li ? this.rows.get(li.dataset.id!) : undefined;
  }

  private isUpperHalf(clientY: number, row: Row): boolean {
    const box = row.element.getBoundingClientRect();
    return clientY < box.top + box.height / 2;
  }

  private clearDropMarks(): void {
    for (const row of this.rows.values()) row.element.classList.remove("drop-before", "drop-after");
  }
}

/** One queue item: handle, status chip, its shared text, author, failure reason, how it goes, actions. */
class Row {
  readonly element: HTMLLIElement;
  private readonly chip = h("span", { class: "chip status" });
  private readonly author = h("p", { class: "author" });
  /** How the item goes: wait its turn, steer into the running turn (send now), or interrupt it. */
  private readonly delivery = h("select", { class: "delivery", "aria-label": "Delivery", "data-action": "delivery" },
    ...(Object.entries(DELIVERY_LABEL) as [QueueEntry["delivery"], string][]).map(([value, label]) => h("option", { value }, label)),
  );
  private readonly text = h("textarea", { class: "text", rows: 1, "aria-label": "Message text" });
  private readonly reason = h("p", { class: "reason", hidden: true });
  private readonly attempts = h("p", { class: "attempts", hidden: true });
  private readonly editors = h("span", { class: "editors" });
  private readonly retry: HTMLButtonElement;
  private readonly remove: HTMLButtonElement;
  private bound: { text: Y.Text; unbind: () => void } | null = null;

  constructor(
    entry: QueueEntry,
    private readonly queue: ThreadQueue,
    private readonly me: string,
    act: (f: () => Promise<unknown> | void) => () => void,
    onDrag: (id: string | null) => void,
    touch: { move: (x: number, y: number) => void; drop: (x: number, y: number) => void },
  ) {
    const id = entry.id;
    // A span, not a button: some browsers never start a drag from a button.
    const handle = h("span", { class: "handle", role: "button", tabindex: 0, draggable: "true", title: "Drag to reorder (or focus and press ↑/↓)", "aria-label": "Reorder" }, "⠿");
    handle.addEventListener("dragstart", (e) => {
      onDrag(id);
      e.dataTransfer?.setData("text/plain", id);
      if (e.dataTransfer) e.dataTransfer.effectAllowed = "move";
      e.dataTransfer?.setDragImage(this.element, 16, 16);
      this.element.classList.add("dragging");
    });
    handle.addEventListener("dragend", () => {
      onDrag(null);
      this.element.classList.remove("dragging");
    });
    touchDrag(handle, {
      start: () => {
        onDrag(id);
        this.element.classList.add("dragging");
      },
      move: touch.move,
      drop: (x, y) => {
        this.element.classList.remove("dragging");
        touch.drop(x, y);
      },
      cancel: () => {
        onDrag(null);
        this.element.classList.remove("dragging");
      },
    });
    handle.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
      e.preventDefault();
      const others = queue.entries.map((x) => x.id).filter((x) => x !== id);
      const target = queue.entries.findIndex((x) => x.id === id) + (e.key === "ArrowUp" ? -1 : 1);
      if (target < 0 || target > others.length) return;
      act(() => queue.move(id, target === 0 ? null : others[target - 1]))();
    });
    this.retry = h("button", { type: "button", "data-action": "retry", onclick: act(() => queue.retry(id)) }, "Retry");
    this.delivery.addEventListener("change", () => {
      const chosen = this.delivery.value as QueueEntry["delivery"];
      act(() => queue.setDelivery(id, chosen).catch((error: unknown) => {
        this.delivery.value = this.queue.entries.find((e) => e.id === id)?.delivery ?? "queue";
        throw error;
      }))();
    });
    this.remove = h("button", { type: "button", class: "danger", "data-action": "remove", onclick: act(() => queue.remove(id)) }, "Remove");
    this.text.addEventListener("focus", () => queue.setEditing(id));
    this.text.addEventListener("blur", () => queue.setEditing(null));
    this.element = h(
      "li",
      { class: "item", "data-id": id },
      handle,
      this.chip,
      h("div", { class: "item-body" }, this.text, this.author, this.reason, this.attempts, this.editors),
      h("div", { class: "item-actions" }, this.delivery, this.retry, this.remove),
    );
    this.update(entry);
  }

  unbind(): void {
    this.bound?.unbind();
    this.bound = null;
  }

  get id(): string {
    return this.element.dataset.id!;
  }

  update(entry: QueueEntry): void {
    // Bound to the item's current Y.Text (the server may replace it when it repairs a document).
    const text = this.queue.text(entry.id);
    if (text !== (this.bound?.text ?? null)) {
      this.unbind();
      this.bound = text && { text, unbind: bindTextarea(text, this.text) };
      if (!text) this.text.value = entry.text;
    }
    this.element.dataset.status = entry.status;
    this.element.dataset.delivery = entry.delivery;
    this.author.hidden = !entry.authorSub;
    this.author.textContent = entry.authorSub === this.me ? "by you" : `by ${entry.authorName ?? entry.authorSub}`;
    // Not under the user's hand: a render before the server has the new choice would flick it back.
    if (document.activeElement !== this.delivery) this.delivery.value = entry.delivery;
    this.chip.textContent = STATUS_LABEL[entry.status];
    this.chip.dataset.status = entry.status;
    // A failed attempt shows while the item waits to try again, not only once it failed for good.
    this.reason.hidden = !entry.failureReason;
    this.reason.textContent = entry.failureReason ?? "";
    const attempts = attemptsLine(entry);
    this.attempts.hidden = attempts === null;
    this.attempts.textContent = attempts ?? "";
    // A frozen item is on its way to the agent: nothing about it can change any more.
    const frozen = isFrozen(entry);
    this.text.readOnly = frozen;
    this.retry.hidden = entry.status !== "failed";
    this.delivery.disabled = frozen;
    this.remove.disabled = frozen;
  }

  showEditors(peers: Peer[]): void {
    this.editors.replaceChildren(...peers.map((p) => h("span", { class: "editor", style: `--peer: ${p.color}` }, `${p.name} is typing…`)));
  }
}

/** How many times the item was tried, as its status makes it matter; null before any attempt. */
function attemptsLine(entry: QueueEntry): string | null {
  const n = entry.attempts;
  if (n < 1) return null;
  const count = attemptsOf(n);
  switch (entry.status) {
    case "failed":
      return `after ${count}`;
    case "pending":
      return `${count} so far`;
    case "sending":
      return n > 1 ? `attempt ${n}` : null;
  }
}

const initials = (name: string) =>
  name
    .split(/[\s@._-]+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0]!.toUpperCase())
    .join("") || "?";
