import type { Logger } from "pino";
import * as Y from "yjs";
import {
  DomainError, isFrozen, isValidPositionKey, QueueEdit, QueueMove, textHash, type Command, type DomainErrorReason, type QueueItemState, type ThreadState,
} from "../domain/index.js";
import { StoreUnavailableError } from "../store/types.js";
import { Client } from "./client.js";
import { SparseMap, SparseSet } from "./sparse.js";
import { itemsOf, keepPlainText, sharedTextOf, textOf, writeItemFields, writeMeta, writeNewItem, writeText } from "./schema.js";

/** What the bridge needs from the document replica it serves. */
export interface BridgeHost {
  readonly threadId: string;
  readonly doc: Y.Doc;
  /** The log's state as far as this replica has applied it. */
  state(): ThreadState;
  readonly editCoalesceMs: number;
  /** Origin of server writes. */
  readonly serverOrigin: unknown;
  readonly logger: Logger;
  /** Runs a command; resolves with the thread's version after it. */
  execute(command: Command, actor: string): Promise<{ version: number }>;
  /**
   * Everything the document holds is stored, other instances' keystrokes that reached it by bus
   * included: an edit never outruns the text it reads, and a replica following it finds that text in the store.
   */
  persisted(): Promise<void>;
  /** Merges the stored document (every instance's updates, whatever the bus delivered) into this replica. */
  mergeStored(): Promise<void>;
  /** Reload the log's state and bring the whole document to it (keeping `pending`'s items). */
  resync(): Promise<void>;
  /** Apply the events this replica missed, as if they had arrived (their typed texts followed: see `followed`). */
  catchUp(): Promise<void>;
  /** Write the log's text of the item into the document (by the replica holding the writer lease); resolves once it is there. */
  writeLogText(id: string): Promise<void>;
}

/** The client writes one transaction made, as the observers saw them. */
interface Review {
  meta: boolean;
  /** Keys of `items` a client added, replaced or deleted. */
  members: Set<string>;
  /** Item id → keys of its map a client set or deleted. */
  fields: Map<string, Set<string>>;
  /** Items whose text a client typed into. */
  texts: Set<string>;
  client: Client;
}

const RETRY_MS = 1_000;

/** An item's coalescing window: its timer (null once its commit is queued) and last typist. */
interface Edit {
  timer: NodeJS.Timeout | null;
  actor: string;
}

/**
 * The log's text an item's document text was typed on: the newest text of the log this
 * replica's document is known to hold, and the thread version at which the log had it.
 */
interface Base {
  text: string;
  version: number;
}

/**
 * Client writes → commands. Text typed into an item becomes `queue.edit` (coalesced per
 * item); a new position becomes `queue.move`. Every other client write is undone at once by
 * a server write, and a write the decider refuses is undone by bringing the document back
 * to the log — so every replica converges to what the log says.
 */
export class Bridge {
  /** Items with typed text whose commit has not started. */
  private readonly edits = new SparseMap<string, Edit>();
  /** Items whose typed text is being committed: the document's text, not yet the log's. */
  private readonly committing = new SparseMap<string, number>();
  /**
   * Acknowledging typing: each keystroke a client made into an item gets a number
   * (`typedUpTo`); a commit that read the text after it, or a refusal that undid it,
   * settles it (`settledUpTo`). `committed()` waits for the numbers it was called after.
   */
  private keystrokes = 0;
  private readonly typedUpTo = new SparseMap<string, number>();
  private readonly settledUpTo = new SparseMap<string, number>();
  private settledWaiters: (() => void)[] = [];
  /**
   * Per item, the log's text its document text was typed on: every commit carries it
   * (`replaces`), and the decider refuses it once the log moved past it. It is the text the
   * document was seen holding whole (written by a server, or arrived so from another
   * instance or the store) or this replica committed; or the text of another replica's
   * commit, which the document holds only once the stored document (where that replica put
   * everything it committed) is merged: those are `unmerged` until then.
   */
  private readonly bases = new SparseMap<string, Base>();
  private readonly unmerged = new SparseSet<string>();
  /**
   * Per item, the clocks (client id → clock) the server-side write that brought its document
   * text to its base reached: a device whose replica did not hold them typed on an older text.
   */
  private readonly written = new SparseMap<string, Map<number, number>>();
  /** The text a server-side write last left an item with, when it was not the log's (yet): the log's may catch up with it. */
  private readonly lastSeen = new SparseMap<string, string>();
  /** Items with a move waiting in `work`: reconciliation must not put them back meanwhile. */
  private readonly moves = new SparseMap<string, number>();
  /** Commands run one after another, in the order the writes arrived. */
  private work: Promise<void> = Promise.resolve();
  private review: Review | null = null;
  private closed = false;

  constructor(private readonly host: BridgeHost) {
    const { doc } = host;
    // A read-only client's writes are undone before they are settled: nothing of them is reviewed.
    doc.getMap("meta").observe((_event, tr) => {
      if (tr.origin instanceof Client && !tr.origin.readOnly) this.reviewOf(tr.origin).meta = true;
    });
    itemsOf(doc).observeDeep((events, tr) => {
      if (!(tr.origin instanceof Client)) return this.seen(events, tr);
      if (tr.origin.readOnly) return;
      const review = this.reviewOf(tr.origin);
      for (const event of events) collect(review, event, itemsOf(doc));
    });
  }

  /** Items whose typed text or position the pending commands are about to commit. */
  get pending(): { text: ReadonlySet<string>; position: ReadonlySet<string> } {
    return { text: new Set([...this.edits.keys(), ...this.committing.keys()]), position: new Set(this.moves.keys()) };
  }

  /**
   * Resolves once every keystroke clients made before the call is in the log (committed),
   * or was refused and undone in the document: the answer to a device's sync request, sent
   * after it, then carries the outcome — the device's replica shows its typed text only if
   * the log holds it, and the log's text where the typing was refused (an item another
   * instance had claimed, one removed, a text an API edit replaced first). So a device is
   * never told typing is held that the log has lost. An unavailable store keeps it waiting:
   * the edit retries, and an unanswered device knows nothing was acknowledged.
   */
  async committed(): Promise<void> {
    const due = [...this.typedUpTo].filter(([id, n]) => (this.settledUpTo.get(id) ?? 0) < n);
    while (!this.closed && due.some(([id, n]) => (this.settledUpTo.get(id) ?? 0) < n)) {
      const settled = new Promise<void>((resolve) => this.settledWaiters.push(resolve));
      await this.flush();
      if (due.every(([id, n]) => (this.settledUpTo.get(id) ?? 0) >= n)) break;
      await settled;
    }
  }

  /**
   * Called right after a client's update was applied: undoes its illegal writes in one
   * server transaction and queues the commands for its legal ones. Returns the client and
   * the items it typed into (their text becomes an edit), if any. `heldAtSync`: the update
   * is the device's catch-up after a (re)connect, made on a replica that held this state
   * vector.
   */
  settle(heldAtSync: Map<number, number> | null = null): { client: Client; typed: string[] } | null {
    const review = this.review;
    this.review = null;
    if (!review) return null;
    const actor = review.client.actor;
    const typed: string[] = [];
    const { doc } = this.host;
    const state = this.host.state();
    const items = itemsOf(doc);
    const moves: [string, string][] = [];
    const unheardOf = new Map<string, Set<string>>();
    doc.transact((transaction) => {
      if (review.meta) writeMeta(doc, state);
      for (const id of review.members) {
        const truth = state.items.get(id);
        this.dropEdit(id);
        if (truth) writeNewItem(doc, truth);
        else if (items.has(id)) items.delete(id);
      }
      for (const [id, keys] of review.fields) {
        if (review.members.has(id)) continue;
        const truth = state.items.get(id);
        // An item missing from this replica's state whose map is here may be one whose
        // `queue.item-added` has not arrived yet (another instance wrote the map): reviewed
        // once this replica caught up with the log, not deleted as made up.
        if (!truth && items.get(id) instanceof Y.Map) {
          unheardOf.set(id, keys);
          // The catch-up leaves a new position alone, as for a move on its way.
          if (keys.has("position")) count(this.moves, id, +1);
        } else this.reviewFields(id, keys, truth, moves);
      }
      for (const id of review.texts) {
        if (review.members.has(id) || review.fields.get(id)?.has("text")) continue;
        const truth = state.items.get(id);
        const text = items.get(id)?.get("text");
        // Formatting and embeds are not the log's to keep: gone before the text becomes an edit.
        if (text instanceof Y.Text) keepPlainText(text, transaction);
        // An item missing from this replica's state may be one whose map arrived (another
        // instance wrote it) before its `queue.item-added` did: its typing is typing like any
        // other, never skipped (the answer would then acknowledge typing the log never gets).
        // Its commit, knowing no base, catches up with the log first (`rebase`): then it is
        // committed, or refused and undone if the item is gone.
        // Typing made offline on a text the log has replaced since (the device did not hold
        // the write of the base) is refused like typing into a frozen item: merged, it would
        // be a text nobody wrote, and the replacement was acknowledged first.
        if (truth && (isFrozen(truth) || (heldAtSync && !this.holdsBase(id, heldAtSync)))) writeText(doc, id, truth.text);
        else {
          this.typedUpTo.set(id, ++this.keystrokes);
          this.scheduleEdit(id, actor);
          typed.push(id);
        }
      }
    }, this.host.serverOrigin);
    for (const [id, position] of moves) this.queueMove(id, position, actor);
    if (unheardOf.size > 0) this.enqueue(() => this.reviewAfterCatchUp(unheardOf, actor));
    return typed.length > 0 ? { client: review.client, typed } : null;
  }

  /**
   * A client's writes to the fields of an item: a new position becomes a move, anything
   * else is put back to the log's (`truth`); an item the log does not have is deleted.
   */
  private reviewFields(id: string, keys: Set<string>, truth: QueueItemState | undefined, moves: [string, string][]): void {
    const { doc } = this.host;
    const map = itemsOf(doc).get(id);
    if (!truth || !(map instanceof Y.Map)) {
      if (!truth && itemsOf(doc).has(id)) itemsOf(doc).delete(id);
      return;
    }
    for (const key of keys) {
      if (key === "position") {
        const position = map.get("position");
        if (typeof position === "string" && isValidPositionKey(position) && !isFrozen(truth)) {
          if (position !== truth.position) moves.push([id, position]);
        } else map.set("position", truth.position);
      } else if (key === "text") {
        // A client replaced the Y.Text itself: only its content is theirs to change.
        this.dropEdit(id);
        map.set("text", new Y.Text(truth.text));
      } else writeItemFields(doc, truth, { position: false });
    }
  }

  /** Field writes to items this replica had not heard of, reviewed against the log caught up with. */
  private async reviewAfterCatchUp(fields: Map<string, Set<string>>, actor: string): Promise<void> {
    try {
      await this.host.catchUp();
    } finally {
      for (const [id, keys] of fields) if (keys.has("position")) count(this.moves, id, -1);
    }
    const state = this.host.state();
    const moves: [string, string][] = [];
    this.host.doc.transact(() => {
      for (const [id, keys] of fields) this.reviewFields(id, keys, state.items.get(id), moves);
    }, this.host.serverOrigin);
    for (const [id, position] of moves) this.queueMove(id, position, actor);
  }

  /**
   * The log took an edit typed into some replica's document (`version`, `text`): this
   * replica's document holds it once the stored document is merged (the committer stored
   * everything its document held before committing: `persisted`), and typing here goes on over it.
   */
  followed(id: string, text: string, version: number): void {
    this.setBase(id, text, version, textOf(this.host.doc, id) === text);
  }

  /**
   * After `followed`: the edit's text may lack keystrokes still on their way to this replica
   * (CRDT merge gets them there, but only a new edit gets them into the log). So a replica
   * whose text differs from the followed one, with nothing typed here about to be committed,
   * commits its own text over it (after merging the stored document, where every instance's
   * keystrokes are, whatever the bus lost). Nothing when the log moved on from the followed
   * text: the newer text is written into the document by the writer of the log's texts.
   */
  follow(id: string, actor: string): void {
    if (this.edits.has(id) || this.committing.has(id)) return;
    const truth = this.host.state().items.get(id);
    const base = this.bases.get(id);
    const text = textOf(this.host.doc, id);
    if (!truth || isFrozen(truth) || !base || base.text !== truth.text || text === undefined || text === base.text) return;
    this.scheduleEdit(id, actor);
  }

  /**
   * The log's state (this replica's, or `state`, read fresh from the log) may have reached
   * texts this replica's document holds: those are the items' bases from now on.
   */
  known(ids: Iterable<string> = itemsOf(this.host.doc).keys(), state: ThreadState = this.host.state()): void {
    for (const id of ids) {
      const truth = state.items.get(id);
      const shown = textOf(this.host.doc, id);
      if (!truth || (shown !== truth.text && this.lastSeen.get(id) !== truth.text)) continue;
      const before = this.bases.get(id)?.text;
      if (!this.setBase(id, truth.text, state.version, true) || before === truth.text || shown !== truth.text) continue;
      // A new base the document shows, written by a write this replica did not see as such (a
      // document loaded from the store): a device typing on it held every character it shows.
      // Without this, offline typing that reached a replica loaded after an API edit was merged
      // into that edit's text (`npm run chaos`, kill-and-restart-redis seed 13: "v21").
      const text = sharedTextOf(this.host.doc, id);
      if (text) this.written.set(id, contentClocks(text));
    }
  }

  /** Commits every coalesced edit now and waits for all queued commands (before a claim). */
  flush(): Promise<void> {
    for (const [id, edit] of this.edits) {
      if (edit.timer) this.commitEdit(id);
    }
    return this.work;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    for (const resolve of this.settledWaiters.splice(0)) resolve();
  }

  private reviewOf(client: Client): Review {
    this.review ??= { meta: false, members: new Set(), fields: new Map(), texts: new Set(), client };
    this.review.client = client;
    return this.review;
  }

  private scheduleEdit(id: string, actor: string, afterMs = this.host.editCoalesceMs): void {
    const edit = this.edits.get(id);
    if (edit) {
      edit.actor = actor;
      if (edit.timer) return;
    }
    const timer = setTimeout(() => this.commitEdit(id), afterMs);
    this.edits.set(id, { timer, actor });
  }

  /** The item's typing was refused: nothing of it is left to commit, and the log's text goes over it. */
  private async undo(id: string): Promise<void> {
    const edit = this.edits.get(id);
    if (edit?.timer) clearTimeout(edit.timer);
    this.edits.delete(id);
    if (this.host.state().items.has(id)) await this.host.writeLogText(id);
  }

  /** Whether a replica that held `state` held the write that brought the item's text to its base. */
  private holdsBase(id: string, state: Map<number, number>): boolean {
    const written = this.written.get(id);
    if (!written) return true;
    for (const [client, clock] of written) if ((state.get(client) ?? 0) < clock) return false;
    return true;
  }

  /** A newer base (or the same one, now known to be held by the document: `merged`); whether it was set. */
  private setBase(id: string, text: string, version: number, merged: boolean): boolean {
    const base = this.bases.get(id);
    if (base && (base.version > version || (base.version === version && !merged))) return false;
    this.bases.set(id, { text, version });
    this.lastSeen.delete(id);
    if (merged) this.unmerged.delete(id);
    else this.unmerged.add(id);
    return true;
  }

  /**
   * Server-side writes (this replica's, another instance's, the store's) an item's text now
   * shows: the log's text as this replica knows it is then its base; any other text may be
   * one the log has and this replica does not know yet (`known` looks again when it does).
   */
  private seen(events: Y.YEvent<Y.AbstractType<unknown>>[], tr: Y.Transaction): void {
    const items = itemsOf(this.host.doc);
    const touched = new Set<string>();
    const typed = new Set<string>();
    for (const event of events) {
      if (event.target !== items) {
        touched.add(String(event.path[0]));
        if (event.target instanceof Y.Text) typed.add(String(event.path[0]));
        continue;
      }
      for (const [key, change] of event.changes.keys) {
        if (change.action !== "delete") touched.add(key);
        else if (!items.has(key)) this.forget(key);
      }
    }
    // Nothing is known of the log while the stored document is loaded: `known` looks once it is.
    const state: ThreadState | undefined = this.host.state();
    if (!state) return;
    for (const id of touched) {
      const text = textOf(this.host.doc, id);
      if (text === undefined) continue;
      if (state.items.get(id)?.text === text) {
        this.setBase(id, text, state.version, true);
        if (typed.has(id)) this.wrote(id, tr);
      } else this.lastSeen.set(id, text);
    }
  }

  /** The transaction brought the item's text to its base: what it inserted is the base's write. */
  private wrote(id: string, tr: Y.Transaction): void {
    const clocks = new Map<number, number>();
    for (const [client, clock] of tr.afterState) if (clock > (tr.beforeState.get(client) ?? 0)) clocks.set(client, clock);
    // A write that only deleted (another replica's typing) leaves the earlier write the one to hold.
    if (clocks.size > 0) this.written.set(id, clocks);
  }

  private forget(id: string): void {
    this.bases.delete(id);
    this.written.delete(id);
    this.unmerged.delete(id);
    this.lastSeen.delete(id);
  }

  /** The item's typing is gone (undone by a server write): nothing of it is left to commit. */
  private dropEdit(id: string): void {
    const edit = this.edits.get(id);
    if (edit?.timer) clearTimeout(edit.timer);
    this.edits.delete(id);
    this.settleTyping(id, this.typedUpTo.get(id) ?? 0);
  }

  private settleTyping(id: string, upTo: number): void {
    if (upTo <= (this.settledUpTo.get(id) ?? 0)) return;
    this.settledUpTo.set(id, upTo);
    const waiters = this.settledWaiters;
    this.settledWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Queues the edit; the text is read when it runs, so it carries everything typed until then. */
  private commitEdit(id: string): void {
    const edit = this.edits.get(id);
    if (!edit) return;
    if (edit.timer) clearTimeout(edit.timer);
    edit.timer = null;
    this.enqueue(async () => {
      // Typing that arrives from here on starts a new coalescing window; until the log has
      // this one's text, no server write puts the log's older text over it (`pending`).
      if (this.edits.get(id) === edit) this.edits.delete(id);
      count(this.committing, id, +1);
      let covers = 0;
      let refused = false;
      try {
        // A base followed from another replica's commit is in the document once the stored document is.
        while (this.unmerged.delete(id)) await this.host.mergeStored();
        const text = itemsOf(this.host.doc).get(id)?.get("text");
        // The item left the document (sent or removed): its typing goes with it.
        if (!(text instanceof Y.Text)) return void (covers = this.typedUpTo.get(id) ?? 0);
        // Read after the backlog is stored, so the edit carries everything merged meanwhile
        // (other instances' keystrokes too); the second wait covers only what that read added.
        await this.host.persisted();
        const typed = text.toString();
        const base = this.bases.get(id);
        covers = this.typedUpTo.get(id) ?? 0;
        await this.host.persisted();
        // The document holds exactly the log's text it was typed on: nothing to commit.
        if (base?.text === typed) return;
        const command =
          base && QueueEdit.safeParse({ type: "queue.edit", queueItemId: id, text: typed, via: "document", replaces: textHash(base.text), basedOn: base.version });
        // Typing the log cannot take (a text past the limit) is refused like any other.
        if (command && !command.success) return void (refused = true);
        const outcome = command
          ? await this.run(command.data, edit.actor, (afterMs) => this.scheduleEdit(id, edit.actor, afterMs), "TEXT_CHANGED")
          : "refused";
        if (outcome === "retrying") covers = 0;
        else if (outcome === "refused") {
          if (await this.rebase(id, edit.actor, base)) covers = 0;
          else refused = true;
        } else if (outcome === "done") refused = true;
        else this.setBase(id, typed, outcome.version, true);
      } finally {
        count(this.committing, id, -1);
        // Settled once the undo is in the document (no longer `committing`, so the writer of
        // the log's text writes it), not before: the sync answer then shows the refusal.
        if (refused) {
          covers = this.typedUpTo.get(id) ?? 0;
          await this.undo(id);
        }
        this.settleTyping(id, covers);
      }
    });
  }

  /**
   * The log moved past the text this typing was typed on (or this replica knows of none).
   * Once this replica caught up with the log, either its document holds the log's text
   * (another replica's commit, followed: the typing goes on over it, committed again), or
   * the log's newer text is one the document never held (an API edit, committed first):
   * then the typing is refused and the document takes the log's text. Not merged into it:
   * the merge would be a text nobody wrote, and the API edit was acknowledged first. Returns
   * whether the typing is committed again (if not, the caller undoes it).
   */
  private async rebase(id: string, actor: string, stale: Base | undefined): Promise<boolean> {
    await this.host.catchUp();
    const truth = this.host.state().items.get(id);
    const base = this.bases.get(id);
    if (truth && !isFrozen(truth) && base && base.text === truth.text && (!stale || base.version > stale.version)) {
      this.scheduleEdit(id, actor);
      return true;
    }
    return false;
  }

  private queueMove(id: string, position: string, actor: string): void {
    count(this.moves, id, +1);
    this.enqueue(async () => {
      count(this.moves, id, -1);
      const command = QueueMove.parse({ type: "queue.move", queueItemId: id, to: { position } });
      await this.run(command, actor, (afterMs) => setTimeout(() => void this.host.resync(), afterMs).unref());
    });
  }

  /**
   * A refusal puts the document back to the log (but a `tolerated` one, left to the caller:
   * "refused"); an unavailable store retries later (`retry` is told when, at once: a typed
   * text waiting to be committed again stays pending meanwhile). Done: the thread's version after it.
   */
  private async run(command: Command, actor: string, retry: (afterMs: number) => void, tolerated?: DomainErrorReason): Promise<{ version: number } | "done" | "refused" | "retrying"> {
    try {
      return await this.host.execute(command, actor);
    } catch (error) {
      if (error instanceof DomainError) {
        if (error.reason === tolerated) return "refused";
        await this.host.resync();
        return "done";
      }
      if (error instanceof StoreUnavailableError && !this.closed) {
        retry(RETRY_MS);
        return "retrying";
      }
      throw error;
    }
  }

  private enqueue(task: () => Promise<void>): void {
    this.work = this.work.then(task).catch(async (err: unknown) => {
      // Whatever failed, the document must not keep a write the log does not have.
      this.host.logger.error({ err, threadId: this.host.threadId }, "a document write could not become a command");
      await this.host.resync().catch(() => {});
    });
  }
}

/** Per client, the clock just past the last character the text shows: a replica holding these holds every visible character. */
function contentClocks(text: Y.Text): Map<number, number> {
  const clocks = new Map<number, number>();
  for (let item = text._start; item !== null; item = item.right) {
    if (item.deleted) continue;
    const end = item.id.clock + item.length;
    if (end > (clocks.get(item.id.client) ?? 0)) clocks.set(item.id.client, end);
  }
  return clocks;
}

/** Counts one more (+1) or one fewer (-1) of `id`'s pending operations; a count of zero leaves no key. */
function count(counts: SparseMap<string, number>, id: string, by: 1 | -1): void {
  const left = (counts.get(id) ?? 0) + by;
  if (left > 0) counts.set(id, left);
  else counts.delete(id);
}

/** Sorts one observed change into the review by where it happened (event.path is relative to `items`). */
function collect(review: Review, event: Y.YEvent<Y.AbstractType<unknown>>, items: unknown): void {
  const path = event.path;
  if (event.target === items) {
    for (const key of event.changes.keys.keys()) review.members.add(key);
    return;
  }
  const id = String(path[0]);
  if (path.length === 1) {
    const fields = review.fields.get(id) ?? new Set<string>();
    for (const key of event.changes.keys.keys()) fields.add(key);
    review.fields.set(id, fields);
    return;
  }
  if (path.length === 2 && path[1] === "text" && event.target instanceof Y.Text) {
    review.texts.add(id);
    return;
  }
  // A change inside a nested value a client put under some field: that field is not theirs.
  const fields = review.fields.get(id) ?? new Set<string>();
  fields.add(String(path[1]));
  review.fields.set(id, fields);
}
