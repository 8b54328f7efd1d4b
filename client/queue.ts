import type { TRPCClient } from "@trpc/client";
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import * as encoding from "lib0/encoding";
import { ObservableV2 } from "lib0/observable";
import { WebsocketProvider } from "y-websocket";
import * as syncProtocol from "y-protocols/sync";
import * as Y from "yjs";
import type { AppRouter, DocEntry, DocQueueMeta } from "./router-types.js";
import { compareOrder, keyBetween } from "../src/domain/ordering.js";
import { MAX_TEXT_LENGTH } from "../src/domain/limits.js";
import { TokenSource, type TokenOption } from "./token.js";
import { isFrozen } from "../src/domain/state.js";
import { WebSocketImpl } from "./transport.js";
import { applyTextChange as applyDocText, itemsOf, metaOf, readItemFields, type DocItem, type DocMeta } from "../src/contract/document.js";
import { MESSAGE_SYNC } from "../src/contract/y-protocol.js";
import { EDITING } from "../src/contract/document.js";
import { defaultOutbox, type OutboxEntry, type OutboxStore } from "./outbox.js";

type Outputs = inferRouterOutputs<AppRouter>;
type Snapshot = Outputs["thread"]["get"];
/** What `queue.add` answers: the item's id and what became of it (idempotent by messageId). */
export type Added = Outputs["queue"]["add"];
export type ItemStatus = Snapshot["queue"]["items"][number]["status"];
export type SessionStatus = Snapshot["session"]["status"];
export type PauseReason = NonNullable<Snapshot["queue"]["pauseReason"]>;

/** One queue item as the live document shows it (docs/contract.md, "The thread's Yjs document"). */
export type QueueEntry = DocEntry;

export type QueueMeta = DocQueueMeta;

/** What a device tells the others through awareness: who it is and which item it edits. */
export interface Presence {
  name: string;
  color: string;
  editing: string | null;
}

export interface Peer extends Presence {
  clientId: number;
}

/** `closed`: the server refused the connection for good (bad token, no access); see `closeReason`. */
export type ConnectionStatus = "connecting" | "connected" | "disconnected" | "closed";

export interface ThreadQueueEvents {
  /** The items or the meta changed, locally or remotely. */
  change: (queue: ThreadQueue) => void;
  status: (status: ConnectionStatus) => void;
  peers: (peers: Peer[]) => void;
  /** A message from the outbox the server refused for good (an archived thread, …): it is dropped, and said so here. */
  refused: (entry: OutboxEntry, error: unknown) => void;
}

type AddInput = inferRouterInputs<AppRouter>["queue"]["add"];
export type MessageStatus = inferRouterOutputs<AppRouter>["queue"]["status"];

export interface AddOptions {
  /** The idempotency key of the message; a fresh one when omitted. */
  messageId?: string;
  attachments?: AddInput["message"]["attachments"];
  /** What the user saw when queueing (model, mode, …), snapshotted on the item. */
  options?: AddInput["options"];
  /**
   * How it goes: `queue` (default) waits for its turn, `steer` goes into the running turn
   * (or as the next turn), `interrupt` stops the running turn and then goes first.
   */
  delivery?: AddInput["delivery"];
  /** The name shown as who queued it (the server records the token's subject as well). */
  authorName?: AddInput["authorName"];
}

export interface ThreadQueueOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:4780. */
  url: string;
  /** A token, or a function returning a fresh one (see TurnqueueClientOptions). */
  token: TokenOption | TokenSource;
  threadId: string;
  trpc: TRPCClient<AppRouter>;
  presence?: Partial<Presence>;
  /** Where messages written while offline wait (default: IndexedDB in a browser, memory elsewhere). */
  outbox?: OutboxStore;
  onClose?: () => void;
}

const PALETTE = ["#e4572e", "#17bebb", "#ffc914", "#76b041", "#7d5ba6", "#2e86ab", "#f18f01", "#c73e1d"];

/**
 * A thread's queue, live: a replica of the thread's Yjs document kept in sync over
 * y-websocket. Text and order are written to the document (so several devices edit them
 * together, and edits made offline merge on reconnect); everything that changes membership
 * or status goes through tRPC, because only the server decides those.
 */
export class ThreadQueue extends ObservableV2<ThreadQueueEvents> {
  readonly threadId: string;
  readonly doc = new Y.Doc();
  readonly provider: WebsocketProvider;
  private readonly trpc: TRPCClient<AppRouter>;
  private readonly onClose: (() => void) | undefined;
  private readonly items: Y.Map<Y.Map<unknown>>;
  private readonly meta: Y.Map<unknown>;
  private cache: QueueEntry[] | null = null;
  private connection: ConnectionStatus = "connecting";
  private closedBecause: string | null = null;
  private destroyed = false;
  private readonly outboxStore: OutboxStore;
  /** Messages not yet acknowledged by the server, in the order they were written. */
  private waiting: OutboxEntry[] = [];
  private readonly outboxLoaded: Promise<void>;
  private sendingOutbox: Promise<void> | null = null;
  /** The `add` calls of this session still waiting for their message's answer. */
  private readonly answers = new Map<string, { resolve(added: Added): void; reject(error: unknown): void }>();

  constructor(options: ThreadQueueOptions) {
    super();
    this.threadId = options.threadId;
    this.trpc = options.trpc;
    this.outboxStore = options.outbox ?? defaultOutbox();
    this.onClose = options.onClose;
    this.items = itemsOf(this.doc);
    this.meta = metaOf(this.doc);
    const wsBase = options.url.replace(/^http/, "ws").replace(/\/$/, "");
    const tokens = TokenSource.from(options.token);
    this.provider = new WebsocketProvider(`${wsBase}/yjs`, encodeURIComponent(options.threadId), this.doc, {
      // Read at every (re)connect: the server closes the socket when its token expires, and
      // the reconnect must carry a fresh one, so the provider connects once one is held.
      params: {
        get token() {
          return tokens.peek();
        },
      },
      connect: false,
      // Each replica syncs through the server only, which is the one that validates writes.
      disableBc: true,
      WebSocketPolyfill: WebSocketImpl,
    });
    this.doc.on("afterTransaction", (tr) => {
      if (tr.changed.size === 0 && tr.changedParentTypes.size === 0) return;
      this.cache = null;
      this.emit("change", [this]);
    });
    this.provider.on("status", ({ status }) => this.setStatus(status));
    // What waits in the outbox (written offline, on this device, maybe before a reload) goes
    // out whenever the server can be reached again.
    this.outboxLoaded = this.outboxStore.list(this.threadId).then(
      (entries) => {
        const known = new Set(this.waiting.map((e) => e.messageId));
        this.waiting = [...entries.filter((e) => !known.has(e.messageId)), ...this.waiting].sort((a, b) => a.seq - b.seq);
        this.changed();
      },
      () => {},
    );
    this.on("status", (status) => status === "connected" && void this.sendOutbox());
    // Renewed after every lost connection, before the provider's next attempt (it waits at
    // least 100 ms); a reconnect that still carries the old token is refused and retried.
    this.provider.on("connection-close", () => void tokens.get().catch(() => {}));
    void tokens.get().then(
      () => !this.destroyed && this.provider.connect(),
      (error: unknown) => {
        this.closedBecause = `no token: ${error instanceof Error ? error.message : String(error)}`;
        this.setStatus("closed");
      },
    );
    this.provider.on("closed", ({ reason }) => {
      this.closedBecause = reason || "the server closed the connection";
      this.setStatus("closed");
    });
    const id = this.doc.clientID;
    this.provider.awareness.setLocalState({
      name: options.presence?.name ?? `device ${id % 1000}`,
      color: options.presence?.color ?? PALETTE[id % PALETTE.length],
      editing: options.presence?.editing ?? null,
    } satisfies Presence);
    this.provider.awareness.on("change", () => this.emit("peers", [this.peers]));
  }

  get status(): ConnectionStatus {
    return this.connection;
  }

  /** Why the server refused the connection for good (status `closed`): the thread is gone, … */
  get closeReason(): string | null {
    return this.closedBecause;
  }

  /** True once the replica has received the server's state at least once on this connection. */
  get synced(): boolean {
    return this.provider.synced;
  }

  /** Resolves when the replica holds the server's state. */
  whenSynced(): Promise<void> {
    if (this.provider.synced) return Promise.resolve();
    return new Promise((resolve) => {
      const onSync = (synced: boolean) => {
        if (!synced) return;
        this.provider.off("sync", onSync);
        resolve();
      };
      this.provider.on("sync", onSync);
    });
  }

  /**
   * Resolves once the server holds every change this replica made before the call (after
   * a reconnect, too). Typed text the server refused (the item was sent or removed first, or
   * its text replaced through the API first) is undone in this replica by then: what the
   * replica shows once it resolves is what the log keeps. Call it before a tRPC call that must see them: document updates and
   * tRPC calls travel on different connections, so nothing else orders one after the other.
   */
  async flush(): Promise<void> {
    await this.whenSynced();
    // Synced implies an open socket. The server answers a sync request only after everything
    // sent before it on that socket, and its answer marks the replica synced again.
    const socket = this.provider.ws!;
    this.provider.synced = false;
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MESSAGE_SYNC);
    syncProtocol.writeSyncStep1(encoder, this.doc);
    socket.send(encoding.toUint8Array(encoder));
    await this.whenSynced();
    // The socket dropped before the answer: ask again on the new one.
    if (this.provider.ws !== socket) await this.flush();
  }

  /** Items in queue order: `(position, id)`, the order the server drains in. */
  get entries(): QueueEntry[] {
    this.cache ??= [...this.items.values()].map(entryOf).sort((a, b) =>
      compareOrder({ position: a.position, queueItemId: a.id }, { position: b.position, queueItemId: b.id }),
    );
    return this.cache;
  }

  get(id: string): QueueEntry | undefined {
    const item = this.items.get(id);
    return item ? entryOf(item) : undefined;
  }

  get state(): QueueMeta {
    return {
      version: (this.meta.get("version") as number | undefined) ?? 0,
      session: (this.meta.get("session") as SessionStatus | undefined) ?? "unknown",
      paused: (this.meta.get("paused") as boolean | undefined) ?? false,
      pauseReason: (this.meta.get("pauseReason") as PauseReason | null | undefined) ?? null,
      // When a rate-limit hold ends by itself (null otherwise): what a countdown counts to.
      resumeAt: (this.meta.get("resumeAt") as string | null | undefined) ?? null,
      mode: (this.meta.get("mode") as DocMeta["mode"] | undefined) ?? "auto",
    };
  }

  /** The item's shared text, for binding an editor to it (see client/web/text-binding.ts). */
  text(id: string): Y.Text | null {
    const text = this.items.get(id)?.get("text");
    return text instanceof Y.Text ? text : null;
  }

  /** Everyone else looking at this thread right now. */
  get peers(): Peer[] {
    const peers: Peer[] = [];
    for (const [clientId, state] of this.provider.awareness.getStates()) {
      if (clientId === this.doc.clientID || !isPresence(state)) continue;
      peers.push({ clientId, name: state.name, color: state.color, editing: state.editing });
    }
    return peers;
  }

  /** Tell the others which item this device is editing (null: none). */
  setEditing(id: string | null): void {
    this.provider.awareness.setLocalStateField(EDITING, id);
  }

  /**
   * Queue a message; resolves with the server's answer. Its `messageId` is fixed here.
   * While the server cannot be reached (or older messages still wait), it goes into the
   * outbox (`outbox`, shown at once) and is sent, in the order written, once the connection
   * is back; the promise resolves then. The server queues a message id once, so a send
   * whose answer was lost is simply sent again, and a reload keeps the browser's outbox.
   */
  async add(text: string, options: AddOptions = {}): Promise<Added> {
    const entry: OutboxEntry = {
      threadId: this.threadId,
      messageId: options.messageId ?? crypto.randomUUID(),
      text,
      attachments: options.attachments,
      options: options.options,
      delivery: options.delivery,
      authorName: options.authorName,
      seq: Date.now() * 1000 + (nextSeq++ % 1000),
      createdAt: new Date().toISOString(),
    };
    await this.outboxLoaded;
    if (this.connection === "connected" && this.waiting.length === 0) {
      let added: Added | null = null;
      try {
        added = await this.send(entry);
      } catch (error) {
        if (!unreachable(error)) throw error;
      }
      if (added) return this.shown(added, entry.messageId);
    }
    await this.outboxStore.put(entry);
    const answer = new Promise<Added>((resolve, reject) => this.answers.set(entry.messageId, { resolve, reject }));
    this.waiting.push(entry);
    this.changed();
    void this.sendOutbox();
    return this.shown(await answer, entry.messageId);
  }

  /**
   * Resolves once the live queue shows the added item, so that what `add` resolved with can
   * be moved or edited at once. The instance that commits an add writes the item into its
   * document before it answers, and sends it to its devices before the answer: connected
   * there, the item is already here (no wait). Otherwise (this device's document is served
   * by another instance, another replica held the thread's writer lease, or the answer
   * overtook the update on its own connection) it waits for the item, asking the server
   * what became of the message every 250 ms; it stops when the item left the queue before
   * it showed (an idle agent took it at once, or someone removed it) or when the connection
   * is not up (the replica catches up on reconnect).
   */
  private async shown(added: Added, messageId: string): Promise<Added> {
    const settled = () => this.items.has(added.queueItemId) || this.connection !== "connected" || this.destroyed;
    while (!settled()) {
      let wake = () => {};
      const woken = new Promise<void>((resolve) => (wake = resolve));
      this.on("change", wake);
      this.on("status", wake);
      const timer = setTimeout(wake, 250);
      try {
        await woken;
      } finally {
        clearTimeout(timer);
        this.off("change", wake);
        this.off("status", wake);
      }
      if (settled()) break;
      const fate = await this.messageStatus(messageId).then((s) => s.state, () => "unknown");
      if (fate !== "queued" && fate !== "sending" && fate !== "failed") break;
    }
    return added;
  }

  /** Messages written while offline, not yet acknowledged by the server, in the order they go. */
  get outbox(): readonly OutboxEntry[] {
    return this.waiting;
  }

  private send(entry: OutboxEntry): Promise<Added> {
    return this.trpc.queue.add.mutate({
      threadId: this.threadId,
      message: { messageId: entry.messageId, text: entry.text, attachments: entry.attachments },
      options: entry.options,
      delivery: entry.delivery,
      authorName: entry.authorName,
    });
  }

  /**
   * Sends the outbox in order, one at a time, while the live connection is up (the sign
   * the server can be reached); stops at the first failure to reach it.
   */
  private sendOutbox(): Promise<void> {
    if (this.connection !== "connected") return Promise.resolve();
    this.sendingOutbox ??= (async () => {
      try {
        await this.outboxLoaded;
        while (this.waiting.length > 0 && !this.destroyed) {
          const entry = this.waiting[0];
          const answer = this.answers.get(entry.messageId);
          let added: Added | null = null;
          try {
            added = await this.send(entry);
          } catch (error) {
            if (unreachable(error)) return;
            this.emit("refused", [entry, error]);
            answer?.reject(error);
          }
          await this.outboxStore.remove(entry.threadId, entry.messageId);
          this.waiting.shift();
          this.answers.delete(entry.messageId);
          if (added) answer?.resolve(added);
          this.changed();
        }
      } finally {
        this.sendingOutbox = null;
      }
    })();
    return this.sendingOutbox;
  }

  private changed(): void {
    this.cache = null;
    this.emit("change", [this]);
  }

  /**
   * Replace the item's text with the smallest Y.Text change that does it, so concurrent
   * edits of other parts of the text by other devices survive. Works offline. A text over
   * the server's limit is refused here: the server would only undo it.
   */
  edit(id: string, text: string): void {
    if (text.length > MAX_TEXT_LENGTH) {
      throw new RangeError(`an item's text is at most ${MAX_TEXT_LENGTH} characters (got ${text.length})`);
    }
    const shared = this.editable(id).get("text");
    if (!(shared instanceof Y.Text)) throw new Error(`item ${id} has no shared text`);
    this.doc.transact(() => applyDocText(shared, text), this);
  }

  /**
   * Move the item right after `afterId` (null: to the head): a new fractional key between
   * its new neighbours, written to the document, so it works offline and shows at once
   * everywhere. Neighbours sharing one key (two devices wrote it at once) leave no key
   * between them; then the server places the item (it re-keys that group), online only.
   */
  async move(id: string, afterId: string | null): Promise<void> {
    const item = this.editable(id);
    if (afterId === id) throw new Error("an item cannot move after itself");
    const others = this.entries.filter((e) => e.id !== id);
    const index = afterId === null ? -1 : others.findIndex((e) => e.id === afterId);
    if (afterId !== null && index === -1) throw new Error(`item ${afterId} is not in the queue`);
    const before = others[index]?.position ?? null;
    const after = others[index + 1]?.position ?? null;
    if (before !== null && after !== null && before >= after) {
      await this.trpc.queue.move.mutate({ threadId: this.threadId, queueItemId: id, afterId });
      return;
    }
    this.doc.transact(() => item.set("position", keyBetween(before, after)), this);
  }

  async remove(id: string): Promise<void> {
    await this.trpc.queue.remove.mutate({ threadId: this.threadId, queueItemId: id });
  }

  async retry(id: string): Promise<void> {
    await this.trpc.queue.retry.mutate({ threadId: this.threadId, queueItemId: id });
  }

  /** Send this item next: the same as `setDelivery(id, "steer")`. */
  async sendNow(id: string): Promise<void> {
    await this.trpc.queue.sendNow.mutate({ threadId: this.threadId, queueItemId: id });
  }

  /** How a waiting item goes (refused ITEM_SENDING once it is being sent). */
  async setDelivery(id: string, delivery: NonNullable<AddInput["delivery"]>): Promise<void> {
    await this.trpc.queue.setDelivery.mutate({ threadId: this.threadId, queueItemId: id, delivery });
  }

  /** `step`: the queue holds after each turn until `resume`; `auto`: it drains turn after turn. */
  async setMode(mode: "auto" | "step"): Promise<void> {
    await this.trpc.queue.setMode.mutate({ threadId: this.threadId, mode });
  }

  /** What became of a message (queued with its place in line, sending, sent, failed, removed, unknown). */
  messageStatus(messageId: string): Promise<MessageStatus> {
    return this.trpc.queue.status.query({ threadId: this.threadId, messageId });
  }

  async pause(): Promise<void> {
    await this.trpc.queue.pause.mutate({ threadId: this.threadId });
  }

  async resume(): Promise<void> {
    await this.trpc.queue.resume.mutate({ threadId: this.threadId });
  }

  /** Stop the agent's running turn: it ends `interrupted` and the queue holds until resumed. */
  async interrupt(): Promise<void> {
    await this.trpc.thread.interrupt.mutate({ threadId: this.threadId });
  }

  /** Go offline: edits keep landing in the local replica and are sent on `connect()`. */
  disconnect(): void {
    this.provider.disconnect();
  }

  connect(): void {
    this.provider.connect();
  }

  close(): void {
    this.destroyed = true;
    this.provider.awareness.setLocalState(null);
    this.provider.destroy();
    this.doc.destroy();
    this.onClose?.();
  }

  /** The server undoes writes to frozen (sending) items; refusing them here says why at once. */
  private editable(id: string): Y.Map<unknown> {
    const item = this.items.get(id);
    if (!item) throw new Error(`item ${id} is not in the queue`);
    if (isFrozen({ status: item.get("status") as ItemStatus })) throw new Error(`item ${id} is being sent and can no longer change`);
    return item;
  }

  private setStatus(status: ConnectionStatus): void {
    if (this.connection === status) return;
    this.connection = status;
    this.emit("status", [status]);
  }
}

function entryOf(item: Y.Map<unknown>): QueueEntry {
  const fields = readItemFields(item);
  // A map mid-sync may lack fields the server has not written yet: read them as a new item's.
  return {
    ...fields,
    text: item.get("text") instanceof Y.Text ? fields.text : "",
    failureReason: fields.failureReason ?? null,
    attempts: fields.attempts ?? 0,
    delivery: fields.delivery ?? "queue",
    authorSub: fields.authorSub ?? null,
    authorName: fields.authorName ?? null,
  } as QueueEntry;
}

let nextSeq = 0;

/** The server was not reached (no network, a failed fetch) or is unavailable for now: worth sending again later. */
function unreachable(error: unknown): boolean {
  const code = (error as { data?: { code?: string } } | null)?.data?.code;
  return code === undefined || code === "SERVICE_UNAVAILABLE";
}

const isPresence = (state: unknown): state is Presence =>
  typeof state === "object" && state !== null && typeof (state as Presence).name === "string";

/** Rewrite a shared text into `next` with the smallest change: the same diff the server writes with. */
/** Turns `shared` into `next` by the smallest change (what `edit` does to an item's text). */
export const applyTextChange = (shared: Y.Text, next: string): void => applyDocText(shared, next);
