import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import type { Logger } from "pino";
import * as awarenessProtocol from "y-protocols/awareness";
import * as syncProtocol from "y-protocols/sync";
import * as Y from "yjs";
import { channels, type Bus } from "../cluster/bus.js";
import type { Lease } from "../cluster/lease.js";
import { DomainError, evolve, QueueRevokeTyping, replay, textHash, type QueueItemState, type StoredEvent, type ThreadState } from "../domain/index.js";
import { placeIn } from "../engine/feed.js";
import type { Engine } from "../engine/types.js";
import type { DocStore } from "../store/doc-store.js";
import type { EventStore } from "../store/types.js";
import { Bridge } from "./bridge.js";
import { decodeDocMessage, encodeDocMessage } from "./bus-frame.js";
import { missingDependencies } from "./dependencies.js";
import { Client } from "./client.js";
import {
  awarenessMessage, CLOSE, encodeAwarenessUpdate, MAX_AWARENESS_IDS_PER_CONNECTION, parseClientMessage, ProtocolViolation,
  syncStep1Message, syncStep2Message, updateMessage, type AwarenessEntry,
} from "./protocol.js";
import { editedText, itemsOf, metaOf, reconcile, textOf, typedText, writeEvent, writeNewItem, writeText } from "./schema.js";
import { editingItemOf } from "../contract/document.js";
import { EditLocks } from "./edit-locks.js";
import type { WriteBehind } from "./write-behind.js";
import { SparseMap, SparseSet } from "./sparse.js";

/** Transaction origins besides a `Client`: the server's own writes, another instance's, the stored state. */
const SERVER = Symbol("collab:server");
const REMOTE = Symbol("collab:remote");
const STORED = Symbol("collab:stored");

/** Backoff of a replica waiting for another to finish writing texts (the lease is per thread). */
const TEXT_WRITE_RETRY_MS = 100;
const TEXT_WRITE_RETRY_MAX_MS = 2_000;
/** Who revokes typing whose edit lock lapsed, in the log: this instance's writer of the log's texts. */
const WRITER_ACTOR = "collab:text-writer";
/** A catch-up that could not read the store tries again after this long. */
const CATCH_UP_RETRY_MS = 1_000;

export class ThreadGoneError extends Error {
  constructor(threadId: string) {
    super(`thread ${threadId} does not exist`);
    this.name = "ThreadGoneError";
  }
}

export interface ThreadDocDeps {
  engine: Engine;
  /** The log, read directly for the events a replica missed while the bus lost them. */
  events: Pick<EventStore, "readThread">;
  bus: Bus;
  /** Decides which replica writes a text the API changed (two writing it would double it). */
  lease: Lease;
  docStore: DocStore;
  /** Stores the updates of every document of this instance. */
  writer: WriteBehind;
  logger: Logger;
  editCoalesceMs: number;
  editLockMs: number;
  /** Largest awareness state one client may share, in bytes of JSON. */
  maxAwarenessBytes: number;
  /** This instance's id on the bus, so it ignores its own messages. */
  instanceId: string;
  /** Called when the thread is deleted: the registry drops the document. */
  onGone(threadId: string): void;
}

/**
 * One thread's live document on this instance: its clients, their awareness, the bridge
 * that turns their writes into commands, the events written into it, its persistence, and
 * its replication to the same document on other instances.
 */
export class ThreadDoc {
  readonly doc = new Y.Doc();
  readonly awareness = new awarenessProtocol.Awareness(this.doc);
  readonly clients = new Set<Client>();
  /** Which connection introduced each awareness client id of this instance's clients. */
  private readonly awarenessOwners = new Map<number, Client>();
  /** Awareness client ids another instance's clients hold. */
  private readonly remoteAwareness = new SparseSet<number>();
  state!: ThreadState;
  private readonly bridge: Bridge;
  private readonly locks: EditLocks;
  /**
   * A client's update under review: this replica's own updates wait in `localOutbox` instead
   * of reaching its clients (see `applyClientUpdate`). The review is synchronous.
   */
  private reviewing = false;
  private readonly localOutbox: { update: Uint8Array; origin: unknown }[] = [];
  /**
   * While above zero, this replica's own updates wait in `heldOutbox` instead of leaving this
   * instance: keystrokes reach the other instances, by bus or through the store, only once
   * their edit lock is in the log (see `EditLocks`). Through the store too: another instance's
   * writer of an API edit's text merges the stored document, and without a lock to see it
   * wrote the log's older text over them (`npm run chaos`, kill-and-restart-redis seed 13).
   */
  private hold = 0;
  private readonly heldOutbox: Uint8Array[] = [];
  private holdWaiters: (() => void)[] = [];
  /** Events and resyncs are applied one at a time, in order. */
  private applying: Promise<void> = Promise.resolve();
  private unsubscribe: (() => Promise<void>)[] = [];
  /**
   * Items this replica is to write into the document, unless another replica did: `text`,
   * the log's text (the whole item if the document lacks it); `item`, only a missing item
   * (a new one: its text in this replica may be typing newer than the log).
   */
  private readonly textsToWrite = new SparseMap<string, "text" | "item">();
  private writingTexts: Promise<void> | null = null;
  /** What the store is known to hold of this document (at least): see `stored`. */
  private storedVector: Uint8Array | undefined;
  /** Another instance's update arrived by bus since `stored` last ran: only such updates are not pushed to the store here. */
  private busSinceStored = false;
  /** The write of `textsToWrite` under way: the items it took, and its end (written or not). */
  private textWrite: { ids: ReadonlySet<string>; done: Promise<void> } | null = null;
  /** This instance as the holder of edit locks in the log. */
  private readonly holder: string;
  closed = false;

  private constructor(
    readonly threadId: string,
    private readonly deps: ThreadDocDeps,
  ) {
    this.holder = `collab-${deps.instanceId}`;
    // The server holds no presence of its own; it only relays its clients'.
    this.awareness.setLocalState(null);
    this.bridge = new Bridge({
      threadId,
      doc: this.doc,
      state: () => this.state,
      editCoalesceMs: deps.editCoalesceMs,
      serverOrigin: SERVER,
      logger: deps.logger,
      execute: (command, actor) => deps.engine.execute(threadId, command, { actor }),
      persisted: () => this.stored(),
      mergeStored: () => this.mergeStored(),
      resync: () => this.resync(),
      catchUp: () => this.resync("missed"),
      writeLogText: (id) => {
        this.writeTexts([id]);
        return this.textsWritten([id], "written");
      },
    });
    this.locks = new EditLocks({
      threadId,
      holder: this.holder,
      logger: deps.logger,
      editLockMs: deps.editLockMs,
      editCoalesceMs: deps.editCoalesceMs,
      alone: !deps.bus.shared,
      execute: (command, actor) => deps.engine.execute(threadId, command, { actor }),
      names: (client, itemId) => [...client.awarenessIds].some((id) => editingItemOf(this.awareness.getStates().get(id)) === itemId),
      commit: () => this.bridge.flush(),
      uncommitted: (itemId) => this.bridge.pending.text.has(itemId),
    });
    this.doc.on("update", (update: Uint8Array, origin: unknown) => this.onUpdate(update, origin));
    this.awareness.on("update", (change: AwarenessChange, origin: unknown) => this.onAwareness(change, origin));
  }

  /** Stored state first, then the log's state written over it by server writes: never rebuilt from rows. */
  static async load(threadId: string, deps: ThreadDocDeps): Promise<ThreadDoc> {
    const td = new ThreadDoc(threadId, deps);
    try {
      // Alone (no other instance at the bus's far end), a document would only hear itself.
      if (deps.bus.shared) {
        td.unsubscribe = await Promise.all([
          deps.bus.subscribe(channels.doc(threadId), (m) => td.onBusDoc(m)),
          deps.bus.subscribe(channels.awareness(threadId), (m) => td.onBusAwareness(m)),
        ]);
        const stopListening = deps.bus.onReconnected(() => td.afterBusOutage());
        td.unsubscribe.push(async () => stopListening());
      }
      // Other instances holding this document answer with what this one lacks; asked first, so
      // their answer can land before the reconciliation below adds anything of its own.
      td.publishDoc((e) => syncProtocol.writeSyncStep1(e, td.doc));
      const stored = await deps.docStore.load(threadId);
      if (stored.update) Y.applyUpdate(td.doc, stored.update, STORED);
      if (stored.update) td.storedVector = Y.encodeStateVectorFromUpdate(stored.update);
      deps.writer.track(threadId, stored.tail);
      const state = await deps.engine.load(threadId);
      if (!state.exists || state.deleted) throw new ThreadGoneError(threadId);
      td.state = state;
      let texts: string[] = [];
      td.doc.transact(() => (texts = reconcile(td.doc, state, td.bridge.pending)), SERVER);
      td.bridge.known();
      td.writeTexts(texts);
      // A device joining gets the items the log has, not a queue still being filled in.
      await td.writingTexts;
      return td;
    } catch (error) {
      await td.destroy();
      throw error;
    }
  }

  /** A client joins: the server starts the sync (step 1) and tells it who else is here. */
  attach(client: Client): void {
    this.clients.add(client);
    client.send(syncStep1Message(this.doc));
    const states = this.awareness.getStates();
    if (states.size > 0) {
      client.send(awarenessMessage(awarenessProtocol.encodeAwarenessUpdate(this.awareness, [...states.keys()])));
    }
  }

  detach(client: Client): void {
    if (!this.clients.delete(client)) return;
    if (client.awarenessIds.size > 0) {
      awarenessProtocol.removeAwarenessStates(this.awareness, [...client.awarenessIds], null);
    }
  }

  /** One message from a client; a bad one closes that client's connection and touches nothing else. */
  receive(client: Client, data: Uint8Array): void {
    if (!this.clients.has(client)) return;
    try {
      const message = parseClientMessage(data);
      switch (message.type) {
        case "sync-step1":
          client.stateAtSync = message.held;
          void this.answerSync(client, message.stateVector);
          break;
        case "update": {
          const missing = missingDependencies(message.decoded, (c) => Y.getState(this.doc.store, c));
          if (missing) {
            throw new ProtocolViolation(CLOSE.malformed, `update refused: it depends on content the server does not have (${missing})`);
          }
          this.applyClientUpdate(client, message.update, message.catchUp);
          break;
        }
        case "awareness": {
          const own = this.ownAwareness(client, message.entries);
          // Usually the whole update is the client's own: applied as sent, re-encoded only when filtered.
          const update = own.length === message.entries.length ? message.update : encodeAwarenessUpdate(own);
          if (own.length > 0) awarenessProtocol.applyAwarenessUpdate(this.awareness, update, client);
          break;
        }
        case "query-awareness":
          client.send(awarenessMessage(awarenessProtocol.encodeAwarenessUpdate(this.awareness, [...this.awareness.getStates().keys()])));
          break;
      }
    } catch (error) {
      if (!(error instanceof ProtocolViolation)) throw error;
      this.deps.logger.warn({ threadId: this.threadId, sub: client.principal.sub, reason: error.message }, "closing a collab connection");
      client.close(error.code, error.message);
      this.detach(client);
    }
  }

  /**
   * The answer to a sync request is the server's acknowledgement of everything the device
   * sent before it (the SDK's `flush`): it goes once the text typed so far is in the log, so
   * acknowledged typing is what a claim on any instance dispatches, and no server write of
   * an older text can undo it. A device that only connects has typed nothing: answered at once.
   */
  private async answerSync(client: Client, stateVector: Uint8Array): Promise<void> {
    try {
      await this.bridge.committed();
    } catch (err) {
      this.deps.logger.warn({ err, threadId: this.threadId }, "typed text not committed; the sync request stays unanswered");
      return;
    }
    if (this.closed || !this.clients.has(client)) return;
    client.send(syncStep2Message(this.doc, stateVector));
  }

  /**
   * The entries of a client's awareness update it may write: its own presence, bounded.
   * Entries of other clients' ids are dropped, not refused: y-websocket's provider sends
   * back every awareness change it sees, the others' too.
   */
  private ownAwareness(client: Client, entries: AwarenessEntry[]): AwarenessEntry[] {
    const own: AwarenessEntry[] = [];
    let introduced = client.awarenessIds.size;
    for (const entry of entries) {
      const holder = this.awarenessHolder(client, entry.clientId);
      if (holder === "other" || (holder === "none" && introduced >= MAX_AWARENESS_IDS_PER_CONNECTION)) continue;
      if (holder === "none") introduced++;
      const bytes = Buffer.byteLength(entry.state);
      if (bytes > this.deps.maxAwarenessBytes) {
        throw new ProtocolViolation(CLOSE.tooLarge, `awareness state of ${bytes} bytes exceeds the ${this.deps.maxAwarenessBytes}-byte limit`);
      }
      own.push(entry);
    }
    return own;
  }

  /**
   * An awareness id is the connection's that introduced it. Another connection of the same
   * user may take it over: a reconnecting device whose old socket is not yet known dead.
   */
  private awarenessHolder(client: Client, id: number): "self" | "other" | "none" {
    const owner = this.awarenessOwners.get(id);
    if (owner) return owner === client || owner.principal.sub === client.principal.sub ? "self" : "other";
    return id === this.awareness.clientID || this.remoteAwareness.has(id) ? "other" : "none";
  }

  private applyClientUpdate(client: Client, update: Uint8Array, catchUp: boolean): void {
    // A viewer's write is applied, then undone by the server: the CRDT cannot forget it, only
    // reverse it, and the reversal reaches the viewer too, so its replica converges.
    const undo = client.readOnly
      ? new Y.UndoManager([metaOf(this.doc), itemsOf(this.doc)], { trackedOrigins: new Set([client]), captureTimeout: 0 })
      : null;
    // Nothing of the update goes out before it is reviewed: an undone write then goes out
    // merged with its undoing (no one sees it). This instance's clients get it as soon as the
    // review is done; other instances only once the items typed into are locked in the log.
    this.reviewing = true;
    this.hold++;
    try {
      Y.applyUpdate(this.doc, update, client);
      if (undo) this.doc.transact(() => { while (undo.undoStack.length > 0) undo.undo(); }, SERVER);
    } catch (error) {
      throw new ProtocolViolation(CLOSE.malformed, `update could not be applied: ${(error as Error).message}`);
    } finally {
      undo?.destroy();
      // Even a partly applied update is reviewed, so nothing illegal stays.
      let typed: ReturnType<Bridge["settle"]> = null;
      let locked: Promise<void> | null = null;
      try {
        typed = this.bridge.settle(catchUp ? client.stateAtSync : null);
      } finally {
        this.reviewing = false;
        // Out to this instance's devices before the lock's command starts, so none of its
        // work on this thread (deciding, and on PGlite the statements) comes before the relay.
        this.releaseLocal();
        try {
          locked = typed && this.locks.typed(typed.client, typed.typed);
        } finally {
          if (locked) void locked.finally(() => this.releaseHold());
          else this.releaseHold();
        }
      }
    }
  }

  /** Committed events of this thread, in version order; a gap means events were missed: resync. */
  applyEvents(events: readonly StoredEvent[]): Promise<void> {
    this.applying = this.applying.catch(() => {}).then(async () => {
      if (this.closed) return;
      const texts: string[] = [];
      const added: string[] = [];
      const followed = new Map<string, string>();
      const changed = new Set<string>();
      let stop: "gap" | "gone" | null = null;
      // One server transaction for the whole commit: a command's events (a lock, an edit, its
      // meta.version rewrites) reach the clients, the store and the bus as one update, not one each.
      this.doc.transact(() => {
        for (const event of events) {
          const place = placeIn(this.state.version, event);
          if (place === "seen") continue;
          if (place === "gap") return void (stop = "gap");
          this.state = evolve(this.state, event);
          writeEvent(this.doc, event, this.state);
          if (event.type === "queue.item-edit-locked" && event.payload.holder === this.holder && event.payload.until !== null) {
            this.locks.landed(event.payload.queueItemId, Date.parse(event.payload.until));
          }
          if (event.type === "thread.deleted") return void (stop = "gone");
          const edited = editedText(event);
          if (edited && !texts.includes(edited)) texts.push(edited);
          if (event.type === "queue.item-added") added.push(event.payload.queueItemId);
          // Revoked typing: a document already showing the log's text holds none of it, and typing from here is on that text.
          if (event.type === "queue.item-added" || event.type === "queue.item-edited" || event.type === "queue.item-typing-revoked") {
            changed.add(event.payload.queueItemId);
          }
          const typed = typedText(event);
          if (typed) {
            followed.set(typed.id, typed.actor);
            this.bridge.followed(typed.id, typed.text, event.version);
          }
        }
      }, SERVER);
      if (stop === "gap") return this.catchUp("missed");
      if (stop === "gone") return this.deps.onGone(this.threadId);
      this.bridge.known(changed);
      this.writeTexts(texts);
      this.writeTexts(added, "item");
      for (const [id, actor] of followed) this.bridge.follow(id, actor);
    });
    return this.applying;
  }

  /**
   * This instance committed these events: applied now, and the items they add (and texts
   * the API edited) written into the document before the command answers, so a device
   * connected here never sees `queue.add` answered without its item. One attempt: when
   * another replica holds the writer lease, they are written as any commit's are (later,
   * by whichever replica gets it). The bus brings the events again; they are then seen.
   */
  async committedHere(events: readonly StoredEvent[]): Promise<void> {
    await this.applyEvents(events).catch(() => {});
    const ids = events.flatMap((e) => (e.type === "queue.item-added" ? [e.payload.queueItemId] : (editedText(e) ?? [])));
    await this.textsWritten(ids, "tried");
  }

  /**
   * Resolves once these items' texts are `written` (by this replica, or found written by
   * another under the lease), or once this replica `tried` (one attempt: the other holder
   * of the lease writes them as it would any commit's).
   */
  private async textsWritten(ids: readonly string[], until: "written" | "tried"): Promise<void> {
    while (ids.length > 0 && !this.closed) {
      const write = this.textWrite;
      if (write && ids.some((id) => write.ids.has(id))) {
        await write.done;
        if (until === "tried") return;
        continue;
      }
      if (!ids.some((id) => this.textsToWrite.has(id))) return;
      // Waiting for the lease another replica holds: tried, or written on a later attempt.
      if (!write && until === "tried") return;
      const next = write?.done ?? this.writingTexts;
      if (!next) return;
      // Behind another write, or another attempt: theirs goes next.
      await next;
    }
  }

  /**
   * Brings the document to the log's current state: after a client write was refused (its
   * texts are this replica's to fix), or after events were `missed` (their edits are
   * applied as if they had arrived: the log's text written for API edits, typed ones
   * followed — never the log's text over typing it has not committed yet).
   */
  resync(cause: "refused" | "missed" = "refused"): Promise<void> {
    this.applying = this.applying.catch(() => {}).then(() => (this.closed ? undefined : this.catchUp(cause)));
    return this.applying;
  }

  /**
   * The bus was down: updates and events published meanwhile never arrived here, and this
   * replica's never reached the others. Ask the others for what this one lacks, give them
   * everything it has (they keep only what they lack), and catch up with the log and the
   * stored document, which every instance wrote to all along.
   */
  private afterBusOutage(): void {
    if (this.closed) return;
    this.publishDoc((e) => syncProtocol.writeSyncStep1(e, this.doc));
    // The whole document, held keystrokes too: once they may leave.
    void this.released().then(() => this.publishDoc((e) => syncProtocol.writeUpdate(e, Y.encodeStateAsUpdate(this.doc))));
    void this.resync("missed").catch((err: unknown) => this.deps.logger.warn({ err, threadId: this.threadId }, "could not catch up after a bus outage"));
  }

  private async catchUp(cause: "refused" | "missed"): Promise<void> {
    try {
      await this.catchUpOnce(cause);
    } catch (error) {
      // The store is unreachable: this replica stays behind until it can read it again.
      if (!this.closed) setTimeout(() => void this.resync(cause).catch(() => {}), CATCH_UP_RETRY_MS).unref();
      throw error;
    }
  }

  private async catchUpOnce(cause: "refused" | "missed"): Promise<void> {
    // Other replicas' writes, stored even when the bus lost them, come first: compared with
    // a document that lacks them, the log's text would look unwritten and be written twice.
    await this.mergeStored();
    const missed = await this.deps.events.readThread(this.threadId, this.state.version);
    // The state is what was read, never a second read: an event committed between two reads
    // would be in the state but not among `missed`, and then skipped as seen when the feed brings it.
    const state = replay(this.state, missed);
    if (this.closed) return;
    if (!state.exists || state.deleted) return this.deps.onGone(this.threadId);
    this.state = state;
    for (const event of missed) {
      const typed = typedText(event);
      if (typed) this.bridge.followed(typed.id, typed.text, event.version);
    }
    let texts: string[] = [];
    this.doc.transact(() => (texts = reconcile(this.doc, state, this.bridge.pending)), SERVER);
    this.bridge.known();
    if (cause === "refused") return this.writeTexts(texts);
    const edited = new Set(missed.map(editedText));
    this.writeTexts(texts.filter((id) => edited.has(id)));
    this.writeTexts(texts, "item");
    for (const event of missed) {
      const typed = typedText(event);
      if (typed) this.bridge.follow(typed.id, typed.actor);
    }
  }

  /** The stored document (every instance's updates, through the store rather than the bus) merged into this replica. */
  private async mergeStored(): Promise<void> {
    await this.deps.writer.flushed();
    const stored = await this.deps.docStore.load(this.threadId);
    // As if from another instance: on to this replica's clients, not back to the bus or the store.
    if (stored.update && !this.closed) Y.applyUpdate(this.doc, stored.update, REMOTE);
    if (stored.update) this.storedVector = Y.encodeStateVectorFromUpdate(stored.update);
  }

  /**
   * Everything this replica's document holds is stored: what it pushed itself, and what
   * other instances' updates brought by bus (they are relayed before their instance stores
   * them, and that instance may die first). A commit of typed text waits for it, so any
   * replica that merges the stored document after the commit holds the committed text
   * (`Bridge.followed` counts on it). Only what the store is not known to hold is written.
   */
  private async stored(): Promise<void> {
    // Keystrokes waiting for their lock are not in the store yet: a commit goes after the lock.
    await this.released();
    // Nothing came by bus: everything the document holds was pushed by this replica (one
    // instance, or a quiet peer), and waiting for those pushes is enough.
    if (!this.busSinceStored) return this.deps.writer.flushed();
    this.busSinceStored = false;
    const vector = Y.encodeStateVector(this.doc);
    const missing = Y.encodeStateAsUpdate(this.doc, this.storedVector);
    this.deps.writer.push(this.threadId, missing);
    await this.deps.writer.flushed();
    this.storedVector = vector;
  }

  /**
   * Writes the log's text of these items into the document (the whole item, when the
   * document lacks it), once across every replica: two replicas inserting the same words
   * would double them, two creating the same item would leave one's map (and what was typed
   * into it) lost. The writers take turns under
   * a per-thread lease, and each first merges the stored document, where the previous
   * writer's text already is (it is stored before the lease is released), so a later
   * writer finds nothing left to write — whether or not the bus carried the first write.
   * Items with typed text about to be committed keep it (that commit comes next).
   */
  private writeTexts(ids: Iterable<string>, what: "text" | "item" = "text"): void {
    for (const id of ids) if (this.textsToWrite.get(id) !== "text") this.textsToWrite.set(id, what);
    if (this.textsToWrite.size === 0 || this.writingTexts || this.closed) return;
    this.writingTexts = this.writePendingTexts()
      .catch((err: unknown) => this.deps.logger.warn({ err, threadId: this.threadId }, "could not write an edited text into the document"))
      .finally(() => {
        this.writingTexts = null;
        if (this.textsToWrite.size > 0) this.writeTexts([]);
      });
  }

  private async writePendingTexts(): Promise<void> {
    const key = `collab:text:${this.threadId}`;
    for (let attempt = 0; this.textsToWrite.size > 0 && !this.closed; attempt++) {
      const ids = [...this.textsToWrite];
      this.textsToWrite.clear();
      let ended!: () => void;
      this.textWrite = { ids: new Set(ids.map(([id]) => id)), done: new Promise<void>((resolve) => (ended = resolve)) };
      let written = false;
      const later: [string, number][] = [];
      const revoke: [string, string][] = [];
      try {
        const held = await this.deps.lease.tryWith(key, async () => {
          // The log as it is now, read from the store (an engine's cache can be older than the log
          // after a bus outage), not as far as this replica applied it: never an older text over a newer one.
          // Read before the stored document is merged (a typed commit it finds was stored before
          // it was committed, so its text is here after the merge: not written a second time, the
          // same words twice) and again after (an item removed meanwhile, its map deleted in the
          // store, is not created again). A text that changed in between is looked at again.
          const before = replay(this.state, await this.deps.events.readThread(this.threadId, this.state.version));
          await this.mergeStored();
          // What the document shows as the second read goes out: whatever reaches it while the read
          // is under way may be newer than what the read returns (a paused instance gets the answer
          // to a read sent before the pause, and the bus's news of the pause's commits, in either
          // order: `npm run chaos`, pause-instance seed 2). Such an item is looked at again.
          const shown = new Map(ids.map(([id]) => [id, textOf(this.doc, id)]));
          const state = replay(before, await this.deps.events.readThread(this.threadId, before.version));
          if (this.closed) return;
          const typed = this.bridge.pending.text;
          const now = Date.now();
          this.doc.transact(() => {
            for (const [id, what] of ids) {
              const item = state.items.get(id);
              if (!item) continue;
              if (textOf(this.doc, id) !== shown.get(id)) {
                // A new item's map that came or went meanwhile is someone else's doing: left to them.
                if (what === "text") later.push([id, now]);
                continue;
              }
              if (!itemsOf(this.doc).has(id)) {
                writeNewItem(this.doc, item);
                continue;
              }
              if (what !== "text" || typed.has(id)) continue;
              const locks = this.typedElsewhere(item, now);
              if (locks.live) later.push([id, locks.live]);
              else if (before.items.get(id)?.text !== item.text) later.push([id, now]);
              else if (locks.lapsed && textOf(this.doc, id) !== item.text) revoke.push([id, item.text]);
              else writeText(this.doc, id, item.text);
            }
          }, SERVER);
          this.bridge.known(ids.map(([id]) => id), state);
          // Typing whose lock lapsed (its typist gone, or its commit stuck) is revoked in the log
          // before the log's text goes over it, so a commit of it landing later is refused: the
          // devices are never shown an older text than the log keeps. Looked at again after.
          for (const [id, text] of revoke) {
            const command = QueueRevokeTyping.parse({ type: "queue.revokeTyping", queueItemId: id, holder: this.holder, replaces: textHash(text) });
            await this.deps.engine.execute(this.threadId, command, { actor: WRITER_ACTOR }).catch((err: unknown) => {
              // Refused: the item moved on (edited, claimed, removed) since the read; the next look sees how.
              if (!(err instanceof DomainError)) throw err;
            });
            later.push([id, now]);
          }
          // Stored before the lease goes: the next writer merges it first (held behind an edit
          // lock on its way, it is not in the store yet, and another writer would write it again).
          await this.released();
          await this.deps.writer.flushed();
        });
        written = held.acquired;
      } catch (err) {
        this.deps.logger.warn({ err, threadId: this.threadId }, "text write failed; retrying");
      }
      this.textWrite = null;
      ended();
      if (later.length > 0) this.writeLater(later);
      if (written) continue;
      for (const [id, what] of ids) this.writeTexts([id], what);
      await new Promise((r) => setTimeout(r, Math.min(TEXT_WRITE_RETRY_MAX_MS, TEXT_WRITE_RETRY_MS * 2 ** attempt)).unref());
    }
  }

  /**
   * Another instance holds an edit lock on the item: typing there is being committed, and its
   * keystrokes may be in this document already (they are relayed once the lock is in the log).
   * The log's text, older than that typing, is not written over it: the typing is committed
   * over the log's text, or refused and undone by its own replica. `live`: when the last such
   * lock ends (0: none is live); the item is looked at again then. `lapsed`: another instance's
   * lock ran out without being ended (its typist vanished, or its commit is stuck): that
   * typing is revoked in the log before anything is written over it.
   */
  private typedElsewhere(item: QueueItemState, now: number): { live: number; lapsed: boolean } {
    const ends = Object.entries(item.editLocks).flatMap(([holder, until]) => (holder !== this.holder ? [Date.parse(until)] : []));
    const end = Math.max(0, ...ends);
    return { live: end > now ? end : 0, lapsed: ends.length > 0 };
  }

  private writeLater(items: [string, number][]): void {
    const end = Math.max(...items.map(([, until]) => until));
    const timer = setTimeout(() => this.writeTexts(items.map(([id]) => id)), Math.max(0, end - Date.now()) + TEXT_WRITE_RETRY_MS);
    timer.unref();
  }

  /** Typed text or a move of a client's is on its way to the log (what `flush` waits for). */
  get writing(): boolean {
    const { text, position } = this.bridge.pending;
    return text.size > 0 || position.size > 0;
  }

  /** Coalesced edits committed and queued commands done: the log has the last acknowledged text. */
  flush(): Promise<void> {
    return this.bridge.flush();
  }

  /** Commits what clients wrote, stores the document, leaves the bus. Clients must be gone. */
  async close(): Promise<void> {
    if (this.closed) return;
    // A lock the store cannot take is no longer asked for: the commit waiting for it goes on.
    this.locks.close();
    await this.bridge.close().catch((err: unknown) => this.deps.logger.error({ err, threadId: this.threadId }, "edits not committed at unload"));
    await this.applying.catch(() => {});
    this.closed = true;
    await this.deps.writer.release(this.threadId);
    await this.destroy();
  }

  /** Gone with its thread: nothing of it is kept. */
  async discard(): Promise<void> {
    this.closed = true;
    await this.destroy();
    this.deps.writer.forget(this.threadId);
    await this.deps.writer.flushed();
    await this.deps.docStore.remove(this.threadId);
  }

  private async destroy(): Promise<void> {
    this.closed = true;
    this.locks.close();
    await Promise.all(this.unsubscribe.map((u) => u().catch(() => {})));
    this.unsubscribe = [];
    this.awareness.destroy();
    this.doc.destroy();
  }

  private onUpdate(update: Uint8Array, origin: unknown): void {
    if (origin === STORED) return;
    // Relayed first: storing it (which may start a write at once) never holds up the devices.
    // Another instance's updates cannot depend on ours still held: they pass.
    if (this.reviewing && origin !== REMOTE) this.localOutbox.push({ update, origin });
    else this.sendToClients(update, origin);
    if (origin === REMOTE) return;
    if (this.hold > 0) this.heldOutbox.push(update);
    else this.sendOut(update);
  }

  /** To the store and the other instances. */
  private sendOut(update: Uint8Array): void {
    this.deps.writer.push(this.threadId, update);
    this.publishUpdate(update);
  }

  /** Resolves once nothing this replica wrote waits for an edit lock to leave the instance. */
  private released(): Promise<void> {
    return this.hold === 0 ? Promise.resolve() : new Promise((resolve) => this.holdWaiters.push(resolve));
  }

  /** To this instance's clients, but the one it came from. */
  private sendToClients(update: Uint8Array, origin: unknown): void {
    if (this.clients.size === 0 || (this.clients.size === 1 && this.clients.has(origin as Client))) return;
    const message = updateMessage(update);
    for (const client of this.clients) if (client !== origin) client.send(message);
  }

  /** To the other instances. */
  private publishUpdate(update: Uint8Array): void {
    this.publishDoc((e) => syncProtocol.writeUpdate(e, update));
  }

  /** The reviewed update goes out to this instance's clients: as it came, or merged with what the review wrote. */
  private releaseLocal(): void {
    if (this.localOutbox.length === 0 || this.closed) return void this.localOutbox.splice(0);
    const held = this.localOutbox.splice(0);
    if (held.length === 1) return this.sendToClients(held[0].update, held[0].origin);
    this.sendToClients(Y.mergeUpdates(held.map((h) => h.update)), null);
  }

  /** The held updates leave the instance, in order, as one update once no hold is left. */
  private releaseHold(): void {
    if (--this.hold > 0) return;
    const held = this.heldOutbox.splice(0);
    if (held.length > 0 && !this.closed) this.sendOut(held.length === 1 ? held[0] : Y.mergeUpdates(held));
    for (const resolve of this.holdWaiters.splice(0)) resolve();
  }

  private onAwareness({ added, updated, removed }: AwarenessChange, origin: unknown): void {
    for (const id of removed) {
      this.awarenessOwners.get(id)?.awarenessIds.delete(id);
      this.awarenessOwners.delete(id);
      this.remoteAwareness.delete(id);
    }
    for (const id of [...added, ...updated]) {
      if (origin instanceof Client) {
        const previous = this.awarenessOwners.get(id);
        if (previous !== origin) previous?.awarenessIds.delete(id);
        this.awarenessOwners.set(id, origin);
        origin.awarenessIds.add(id);
      } else if (origin === REMOTE) this.remoteAwareness.add(id);
    }
    const changed = [...added, ...updated, ...removed];
    const update = awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed);
    // To every client, the sender too: y-websocket counts any message as a sign of life.
    const message = awarenessMessage(update);
    for (const client of this.clients) client.send(message);
    if (origin !== REMOTE) void this.publish(channels.awareness(this.threadId), () => update);
  }

  private onBusDoc(bytes: Uint8Array): void {
    const frame = decodeDocMessage(bytes);
    if (!frame || frame.origin === this.deps.instanceId || this.closed) return;
    try {
      const decoder = decoding.createDecoder(frame.payload);
      const type = decoding.readVarUint(decoder);
      switch (type) {
        case syncProtocol.messageYjsSyncStep1: {
          const stateVector = decoding.readVarUint8Array(decoder);
          // What this replica has that the asker lacks, held keystrokes too: once they may leave.
          void this.released().then(() => this.publishDoc((e) => syncProtocol.writeSyncStep2(e, this.doc, stateVector)));
          break;
        }
        case syncProtocol.messageYjsSyncStep2:
        case syncProtocol.messageYjsUpdate: {
          const hadGap = this.doc.store.pendingStructs !== null;
          Y.applyUpdate(this.doc, decoding.readVarUint8Array(decoder), REMOTE);
          this.busSinceStored = true;
          // The bus may lose messages: an update that cannot integrate asks the others for the rest.
          if (!hadGap && this.doc.store.pendingStructs !== null) this.publishDoc((e) => syncProtocol.writeSyncStep1(e, this.doc));
          break;
        }
      }
    } catch (err) {
      this.deps.logger.warn({ err, threadId: this.threadId }, "ignored an unreadable document message from the bus");
    }
  }

  private onBusAwareness(bytes: Uint8Array): void {
    const frame = decodeDocMessage(bytes);
    if (!frame || frame.origin === this.deps.instanceId || this.closed) return;
    try {
      awarenessProtocol.applyAwarenessUpdate(this.awareness, frame.payload, REMOTE);
    } catch (err) {
      this.deps.logger.warn({ err, threadId: this.threadId }, "ignored an unreadable awareness message from the bus");
    }
  }

  private publishDoc(write: (encoder: encoding.Encoder) => void): void {
    void this.publish(channels.doc(this.threadId), () => {
      const encoder = encoding.createEncoder();
      write(encoder);
      return encoding.toUint8Array(encoder);
    });
  }

  /** `payload` is made only when another instance can hear it: alone, a keystroke is not encoded for nobody. */
  private async publish(channel: string, payload: () => Uint8Array): Promise<void> {
    if (!this.deps.bus.shared) return;
    try {
      await this.deps.bus.publish(channel, encodeDocMessage({ origin: this.deps.instanceId, payload: payload() }));
    } catch (err) {
      // The bus only makes replicas fast; the store and the next sync make them right.
      this.deps.logger.warn({ err, channel }, "bus publish failed");
    }
  }
}

interface AwarenessChange {
  added: number[];
  updated: number[];
  removed: number[];
}
