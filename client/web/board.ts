import { isFrozen, type Peer, type QueueEntry, type SessionStatus, type ThreadQueue, type TurnqueueClient } from "../index.js";
import type * as Y from "yjs";
import { h, reportTo } from "./dom.js";
import { bindTextarea } from "./text-binding.js";

const STATUS_LABEL: Record<QueueEntry["status"], string> = { pending: "queued", sending: "sending", failed: "failed" };
const SESSION_LABEL: Record<SessionStatus, string> = {
  unknown: "no agent yet",
  starting: "agent starting",
  ready: "agent ready",
  running: "agent working",
  stopped: "agent stopped",
  error: "agent error",
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
  private readonly pauseButton = h("button", { type: "button", class: "secondary", "data-action": "pause" });
  /** Shown while the agent works on a turn: stops it (the turn ends interrupted, the queue holds). */
  private readonly stopButton = h("button", { type: "button", class: "secondary", "data-action": "stop", hidden: true }, "Stop");
  private readonly connection = h("span", { class: "connection", "data-testid": "connection" });
  private readonly peers = h("ul", { class: "peers", "data-testid": "peers", "aria-label": "Also here" });
  private dragged: string | null = null;
  /** Wraps a user action: its failure (a refused move, a lost connection) shows on the board. */
  private readonly act: (f: () => Promise<unknown> | void) => () => void;

  constructor(client: TurnqueueClient, threadId: string, me: string) {
    this.queue = client.openThreadQueue(threadId, { presence: { name: me } });
    const report = reportTo(this.error);
    const act = (this.act = (f) => () => {
      this.error.hidden = true;
      Promise.resolve().then(f).catch(report);
    });

    const draft = h("textarea", { name: "text", rows: 2, placeholder: "Write a follow-up… (Ctrl+Enter queues it)", "aria-label": "New message" });
    const submit = (sendNow: boolean) =>
      act(async () => {
        const text = draft.value.trim();
        if (!text) return;
        // Offline, the message waits in the outbox (shown below the queue) until it is sent.
        const sent = this.queue.add(text, { sendNow });
        draft.value = "";
        await sent.catch((error: unknown) => {
          draft.value ||= text;
          throw error;
        });
      });
    draft.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) submit(false)();
    });
    const composer = h(
      "form",
      { class: "composer", onsubmit: (e: Event) => (e.preventDefault(), submit(false)()) },
      draft,
      h("div", { class: "composer-actions" },
        h("button", { type: "submit" }, "Queue"),
        h("button", { type: "button", class: "secondary", "data-action": "send-now-draft", onclick: submit(true) }, "Send now"),
      ),
    );
    this.pauseButton.addEventListener("click", act(() => (this.queue.state.paused ? this.queue.resume() : this.queue.pause())));
    this.stopButton.addEventListener("click", act(() => this.queue.interrupt()));

    this.title.textContent = threadId;
    client.thread.get.query({ threadId }).then(
      (t) => (this.title.textContent = t.title || t.threadId),
      (error: unknown) => {
        report(error);
        // Missing, deleted or another workspace's (the server does not say which): nothing to show.
        if ((error as { data?: { code?: string } }).data?.code === "NOT_FOUND") {
          this.destroy();
          this.element.replaceChildren(h("p", { class: "error", role: "alert" }, `There is no thread "${threadId}" here.`));
        }
      },
    );

    this.element = h(
      "section",
      { class: "board", "data-thread": threadId },
      h("header", { class: "board-head" },
        h("div", { class: "board-title" }, this.title, this.connection),
        h("div", { class: "board-meta" }, this.session, this.paused, this.pauseButton, this.stopButton, this.peers),
      ),
      composer,
      this.error,
      this.list,
      this.outbox,
      this.empty,
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
  }

  private render(): void {
    const { session, paused, pauseReason } = this.queue.state;
    this.session.textContent = SESSION_LABEL[session];
    this.session.dataset.status = session;
    this.paused.hidden = !paused;
    this.paused.textContent = `paused${pauseReason && pauseReason !== "user" ? ` (${pauseReason})` : ""}`;
    this.pauseButton.textContent = paused ? "Resume" : "Pause";
    this.pauseButton.dataset.action = paused ? "resume" : "pause";
    this.stopButton.hidden = session !== "running";

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
    const row = new Row(entry, this.queue, this.act, (id) => (this.dragged = id));
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
    const target = this.rowAt(e);
    if (!this.dragged || !target) return;
    e.preventDefault();
    this.clearDropMarks();
    target.element.classList.add(this.isUpperHalf(e, target) ? "drop-before" : "drop-after");
  }

  /** Which item was dropped and after which item it goes (null: the head). */
  private dropped(e: DragEvent): { id: string; afterId: string | null } | null {
    this.clearDropMarks();
    const target = this.rowAt(e);
    const id = this.dragged;
    this.dragged = null;
    if (!id || !target || target.id === id) return null;
    const others = this.queue.entries.filter((x) => x.id !== id);
    const index = others.findIndex((x) => x.id === target.id);
    return { id, afterId: this.isUpperHalf(e, target) ? (others[index - 1]?.id ?? null) : target.id };
  }

  private rowAt(e: DragEvent): Row | undefined {
    const li = (e.target as Element | null)?.closest<HTMLElement>("li.item");
    return li ? this.rows.get(li.dataset.id!) : undefined;
  }

  private isUpperHalf(e: DragEvent, row: Row): boolean {
    const box = row.element.getBoundingClientRect();
    return e.clientY < box.top + box.height / 2;
  }

  private clearDropMarks(): void {
    for (const row of this.rows.values()) row.element.classList.remove("drop-before", "drop-after");
  }
}

/** One queue item: handle, status chip, its shared text, failure reason, actions. */
class Row {
  readonly element: HTMLLIElement;
  private readonly chip = h("span", { class: "chip status" });
  private readonly text = h("textarea", { class: "text", rows: 1, "aria-label": "Message text" });
  private readonly reason = h("p", { class: "reason", hidden: true });
  private readonly editors = h("span", { class: "editors" });
  private readonly retry: HTMLButtonElement;
  private readonly sendNow: HTMLButtonElement;
  private readonly remove: HTMLButtonElement;
  private bound: { text: Y.Text; unbind: () => void } | null = null;

  constructor(
    entry: QueueEntry,
    private readonly queue: ThreadQueue,
    act: (f: () => Promise<unknown> | void) => () => void,
    onDrag: (id: string | null) => void,
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
    handle.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
      e.preventDefault();
      const others = queue.entries.map((x) => x.id).filter((x) => x !== id);
      const target = queue.entries.findIndex((x) => x.id === id) + (e.key === "ArrowUp" ? -1 : 1);
      if (target < 0 || target > others.length) return;
      act(() => queue.move(id, target === 0 ? null : others[target - 1]))();
    });
    this.retry = h("button", { type: "button", "data-action": "retry", onclick: act(() => queue.retry(id)) }, "Retry");
    this.sendNow = h("button", { type: "button", class: "secondary", "data-action": "send-now", onclick: act(() => queue.sendNow(id)) }, "Send now");
    this.remove = h("button", { type: "button", class: "danger", "data-action": "remove", onclick: act(() => queue.remove(id)) }, "Remove");
    this.text.addEventListener("focus", () => queue.setEditing(id));
    this.text.addEventListener("blur", () => queue.setEditing(null));
    this.element = h(
      "li",
      { class: "item", "data-id": id },
      handle,
      this.chip,
      h("div", { class: "item-body" }, this.text, this.reason, this.editors),
      h("div", { class: "item-actions" }, this.retry, this.sendNow, this.remove),
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
    this.chip.textContent = STATUS_LABEL[entry.status];
    this.chip.dataset.status = entry.status;
    this.reason.hidden = entry.status !== "failed" || !entry.failureReason;
    this.reason.textContent = entry.failureReason ?? "";
    // A frozen item is on its way to the agent: nothing about it can change any more.
    const frozen = isFrozen(entry);
    this.text.readOnly = frozen;
    this.retry.hidden = entry.status !== "failed";
    this.sendNow.disabled = frozen;
    this.remove.disabled = frozen;
  }

  showEditors(peers: Peer[]): void {
    this.editors.replaceChildren(...peers.map((p) => h("span", { class: "editor", style: `--peer: ${p.color}` }, `${p.name} is typing…`)));
  }
}

const initials = (name: string) =>
  name
    .split(/[\s@._-]+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0]!.toUpperCase())
    .join("") || "?";
