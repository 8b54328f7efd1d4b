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
}

type AddInput = inferRouterInputs<AppRouter>["queue"]["add"];

export interface AddOptions {
  /** The idempotency key of the message; a fresh one when omitted. */
  messageId?: string;
  attachments?: AddInput["message"]["attachments"];
  /** What the user saw when queueing (model, mode, …), snapshotted on the item. */
  options?: AddInput["options"];
  /** Enqueue and send at once, even into a running turn (a steer). */
  sendNow?: boolean;
}

export interface ThreadQueueOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:4780. */
  url: string;
  /** A token, or a function returning a fresh one (see TurnqueueClientOptions). */
  token: TokenOption | TokenSource;
  threadId: string;
  trpc: TRPCClient<AppRouter>;
  presence?: Partial<Presence>;
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

  constructor(options: ThreadQueueOptions) {
    super();
    this.threadId = options.threadId;
    this.trpc = options.trpc;
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
   * a reconnect, too). Call it before a tRPC call that must see them: document updates and
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
    this.provider.awareness.setLocalStateField("editing", id);
  }

  async add(text: string, options: AddOptions = {}): Promise<Added> {
    return this.trpc.queue.add.mutate({
      threadId: this.threadId,
      message: { messageId: options.messageId ?? crypto.randomUUID(), text, attachments: options.attachments },
      options: options.options,
      sendNow: options.sendNow,
    });
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

  async sendNow(id: string): Promise<void> {
    await this.trpc.queue.sendNow.mutate({ threadId: this.threadId, queueItemId: id });
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
  } as QueueEntry;
}

const isPresence = (state: unknown): state is Presence =>
  typeof state === "object" && state !== null && typeof (state as Presence).name === "string";

/** Rewrite a shared text into `next` with the smallest change: the same diff the server writes with. */
/** Turns `shared` into `next` by the smallest change (what `edit` does to an item's text). */
export const applyTextChange = (shared: Y.Text, next: string): void => applyDocText(shared, next);
