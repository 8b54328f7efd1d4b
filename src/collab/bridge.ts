import type { Logger } from "pino";
import * as Y from "yjs";
import {
  DomainError, isFrozen, isValidPositionKey, QueueEdit, QueueMove, textHash, type Command, type DomainErrorReason, type ThreadState,
} from "../domain/index.js";
import { StoreUnavailableError } from "../store/types.js";
import { Client } from "./client.js";
import { itemsOf, keepPlainText, writeItemFields, writeMeta, writeNewItem, writeText } from "./schema.js";

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
  execute(command: Command, actor: string): Promise<unknown>;
  /** Everything pushed to the store so far is stored (an edit never outruns the text it reads). */
  persisted(): Promise<void>;
  /** Merges the stored document (every instance's updates, whatever the bus delivered) into this replica. */
  mergeStored(): Promise<void>;
  /** Reload the log's state and bring the whole document to it (keeping `pending`'s items). */
  resync(): Promise<void>;
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
  /** Set when this replica follows another's commit: the log's text it follows (see `follow`). */
  follows?: string;
}

/**
 * Client writes → commands. Text typed into an item becomes `queue.edit` (coalesced per
 * item); a new position becomes `queue.move`. Every other client write is undone at once by
 * a server write, and a write the decider refuses is undone by bringing the document back
 * to the log — so every replica converges to what the log says.
 */
export class Bridge {
  /** Items with typed text whose commit has not started. */
  private readonly edits = new Map<string, Edit>();
  /** Items whose typed text is being committed: the document's text, not yet the log's. */
  private readonly committing = new Map<string, number>();
  /**
   * Acknowledging typing: each keystroke a client made into an item gets a number
   * (`typedUpTo`); a commit that read the text after it, or a refusal that undid it,
   * settles it (`settledUpTo`). `committed()` waits for the numbers it was called after.
   */
  private keystrokes = 0;
  private readonly typedUpTo = new Map<string, number>();
  private readonly settledUpTo = new Map<string, number>();
  private settledWaiters: (() => void)[] = [];
  /** Items with a move waiting in `work`: reconciliation must not put them back meanwhile. */
  private readonly moves = new Map<string, number>();
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
      if (!(tr.origin instanceof Client) || tr.origin.readOnly) return;
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
   * or was refused and undone in the document: what the server acknowledges to a device
   * (the answer to its sync request) is then never typing the log may still lose. An
   * unavailable store keeps it waiting: the edit retries, and an unanswered device knows
   * nothing was acknowledged.
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
   * the items it typed into (their text becomes an edit), if any.
   */
  settle(): { client: Client; typed: string[] } | null {
    const review = this.review;
    this.review = null;
    if (!review) return null;
    const actor = review.client.actor;
    const typed: string[] = [];
    const { doc } = this.host;
    const state = this.host.state();
    const items = itemsOf(doc);
    const moves: [string, string][] = [];
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
        const map = items.get(id);
        if (!truth || !(map instanceof Y.Map)) {
          if (!truth && items.has(id)) items.delete(id);
          continue;
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
      for (const id of review.texts) {
        if (review.members.has(id) || review.fields.get(id)?.has("text")) continue;
        const truth = state.items.get(id);
        if (!truth) continue;
        const text = items.get(id)?.get("text");
        // Formatting and embeds are not the log's to keep: gone before the text becomes an edit.
        if (text instanceof Y.Text) keepPlainText(text, transaction);
        if (isFrozen(truth)) writeText(doc, id, truth.text);
        else {
          this.typedUpTo.set(id, ++this.keystrokes);
          this.scheduleEdit(id, actor);
          typed.push(id);
        }
      }
    }, this.host.serverOrigin);
    for (const [id, position] of moves) this.queueMove(id, position, actor);
    return typed.length > 0 ? { client: review.client, typed } : null;
  }

  /**
   * The log took an edit made through some replica's document. Its text is the Y.Text that
   * replica read, which may lack keystrokes still on their way to it over the bus; CRDT merge
   * gets them there, but only a new edit gets them into the log. So a replica whose merged
   * text differs from the log's, with nothing typed here about to be committed, commits its
   * own text. The text is never written back into the document: the document is its source.
   */
  follow(id: string, actor: string): void {
    if (this.edits.has(id) || this.committing.has(id)) return;
    const truth = this.host.state().items.get(id);
    const text = itemsOf(this.host.doc).get(id)?.get("text");
    if (!truth || isFrozen(truth) || !(text instanceof Y.Text) || text.toString() === truth.text) return;
    // This replica may lack keystrokes the other one had (the bus lost them), and the log
    // may move on before this commit lands: the commit merges the stored document first,
    // and replaces only the text followed (else refused, and the next commit is followed).
    this.scheduleEdit(id, actor, truth.text);
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

  /** `follows`: a follow's window (a client's keystroke into it makes it the client's). */
  private scheduleEdit(id: string, actor: string, follows?: string): void {
    const edit = this.edits.get(id);
    if (edit) {
      edit.actor = actor;
      if (follows === undefined) delete edit.follows;
      if (edit.timer) return;
    }
    const timer = setTimeout(() => this.commitEdit(id), this.host.editCoalesceMs);
    this.edits.set(id, { timer, actor, ...(follows !== undefined && { follows }) });
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
      this.committing.set(id, (this.committing.get(id) ?? 0) + 1);
      let covers = 0;
      try {
        if (edit.follows !== undefined) await this.host.mergeStored();
        const text = itemsOf(this.host.doc).get(id)?.get("text");
        // The item left the document (sent or removed): its typing goes with it.
        if (!(text instanceof Y.Text)) return void (covers = this.typedUpTo.get(id) ?? 0);
        // Read after the backlog is stored, so the edit carries everything merged meanwhile
        // (other instances' keystrokes too); the second wait covers only what that read added.
        await this.host.persisted();
        const typed = text.toString();
        covers = this.typedUpTo.get(id) ?? 0;
        await this.host.persisted();
        const command = QueueEdit.safeParse({
          type: "queue.edit", queueItemId: id, text: typed, via: "document",
          ...(edit.follows !== undefined && { replaces: textHash(edit.follows) }),
        });
        if (!command.success) return await this.host.resync();
        // A followed text the log moved past is left alone: that newer commit is followed in its turn.
        const outcome = await this.run(command.data, edit.actor, () => this.scheduleEdit(id, edit.actor, edit.follows), edit.follows !== undefined ? "TEXT_CHANGED" : undefined);
        if (outcome === "retrying") covers = 0;
      } finally {
        const left = this.committing.get(id)! - 1;
        if (left) this.committing.set(id, left);
        else this.committing.delete(id);
        this.settleTyping(id, covers);
      }
    });
  }

  private queueMove(id: string, position: string, actor: string): void {
    this.moves.set(id, (this.moves.get(id) ?? 0) + 1);
    this.enqueue(async () => {
      const left = this.moves.get(id)! - 1;
      if (left) this.moves.set(id, left);
      else this.moves.delete(id);
      const command = QueueMove.parse({ type: "queue.move", queueItemId: id, to: { position } });
      await this.run(command, actor, () => this.host.resync());
    });
  }

  /**
   * A refusal puts the document back to the log (but a `tolerated` one, which leaves it
   * be); an unavailable store retries later.
   */
  private async run(command: Command, actor: string, retry: () => unknown, tolerated?: DomainErrorReason): Promise<"done" | "retrying"> {
    try {
      await this.host.execute(command, actor);
    } catch (error) {
      if (error instanceof DomainError) {
        if (error.reason !== tolerated) await this.host.resync();
        return "done";
      }
      if (error instanceof StoreUnavailableError && !this.closed) {
        setTimeout(retry, RETRY_MS).unref();
        return "retrying";
      }
      throw error;
    }
    return "done";
  }

  private enqueue(task: () => Promise<void>): void {
    this.work = this.work.then(task).catch(async (err: unknown) => {
      // Whatever failed, the document must not keep a write the log does not have.
      this.host.logger.error({ err, threadId: this.host.threadId }, "a document write could not become a command");
      await this.host.resync().catch(() => {});
    });
  }
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
