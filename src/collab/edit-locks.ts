import type { Logger } from "pino";
import { DomainError, QueueEditLock, type Command } from "../domain/index.js";
import type { Client } from "./client.js";
import { SparseMap } from "./sparse.js";

export interface EditLockHost {
  readonly threadId: string;
  /** This instance, as the domain's lock holder: it ends only its own locks. */
  readonly holder: string;
  readonly logger: Logger;
  readonly editLockMs: number;
  readonly editCoalesceMs: number;
  /** No other instance can claim this thread's items (one process, an in-process bus). */
  readonly alone: boolean;
  execute(command: Command, actor: string): Promise<unknown>;
  /** Whether the connection's presence names this item as the one it is typing in. */
  names(client: Client, itemId: string): boolean;
  /** Commits the text typed so far (a refused edit is undone before anyone sees it). */
  commit(): Promise<void>;
  /** Whether typing into the item is still on its way to the log (its commit waits for the store). */
  uncommitted(itemId: string): boolean;
}

/** How soon a lock the store could not take is asked for again. */
const LOCK_RETRY_MS = 500;

interface Typing {
  client: Client;
  last: number;
  timer: NodeJS.Timeout | null;
}

/**
 * The collab side of the edit lock; the rule is the domain's (`queue.editLock`,
 * `isEditLocked`). Keystrokes into an item keep a lock on it in the log, held by this
 * instance, so no instance claims the item while it is being typed in: the log is how the
 * lock reaches them all. A device whose presence names the item keeps it locked until
 * `editLockMs` after its last keystroke; typing without such a presence, only until the
 * text is committed. Then the text is committed and this instance's lock ended.
 *
 * The keystrokes leave this instance (bus and store) only once their lock is answered
 * (`typed` resolves): a keystroke another instance has seen is covered by a lock in the log
 * that lasts until it is committed, so a claim decided anywhere after that sees either the
 * lock or the committed text, and no writer of the log's text writes an older one over it.
 * A lock refused (the item was claimed or removed meanwhile) lets them go at once: the
 * commit, refused too, undoes them (it waits for them to be stored, so it cannot come first).
 * This instance's own devices do not wait: a claim here commits their text first (the
 * pre-claim barrier).
 */
export class EditLocks {
  /** Item → until when the log holds this instance's lock at least (asked + forMs: the engine's clock read it later). */
  private readonly until = new SparseMap<string, number>();
  /** Per item being locked: its end, and `land`, which lets what waits for it go once its event is applied here. */
  private readonly taking = new SparseMap<string, { done: Promise<void>; land: () => void }>();
  private readonly typing = new SparseMap<string, Typing>();
  private closed = false;

  constructor(private readonly host: EditLockHost) {}

  /** `client` typed into `items`: resolves when what it typed may be relayed; null when at once. */
  typed(client: Client, items: string[]): Promise<void> | null {
    const now = Date.now();
    const waits: Promise<void>[] = [];
    for (const id of items) {
      const typing = this.typing.get(id) ?? { client, last: now, timer: null };
      typing.client = client;
      typing.last = now;
      this.typing.set(id, typing);
      const named = this.host.names(client, id);
      this.arm(id, typing, named);
      // Alone, a claim here commits the typed text first anyway (the pre-claim barrier): a lock
      // is then only for a person, whose presence names the item, to finish typing.
      if (this.host.alone && !named) continue;
      // Renewed once half of it has passed, so it outlasts the commit of what is relayed now.
      if ((this.until.get(id) ?? 0) - now >= this.host.editLockMs / 2) continue;
      waits.push(this.take(id, this.host.editLockMs, client.actor));
    }
    return waits.length === 0 ? null : Promise.all(waits).then(() => undefined);
  }

  /**
   * This instance's lock on the item is in the log: its event was applied here. What waits
   * for the lock goes now, not at the command's answer, which comes only after this
   * instance's readers of the commit are done: one of them (the writer of an API text
   * committed in the same append) waits for the keystrokes the lock holds back.
   */
  landed(id: string, until: number): void {
    const taking = this.taking.get(id);
    if (!taking) return;
    this.until.set(id, until);
    taking.land();
  }

  close(): void {
    this.closed = true;
    for (const typing of this.typing.values()) if (typing.timer) clearTimeout(typing.timer);
    this.typing.clear();
  }

  /** When to look at the item again: the end of its presence's window, or (no presence) of the coalescing window. */
  private arm(id: string, typing: Typing, named: boolean): void {
    if (typing.timer) clearTimeout(typing.timer);
    const after = named ? this.host.editLockMs : Math.min(this.host.editCoalesceMs, this.host.editLockMs / 2);
    typing.timer = setTimeout(() => void this.release(id, typing), Math.max(0, typing.last + after - Date.now()));
    typing.timer.unref();
  }

  private async release(id: string, typing: Typing): Promise<void> {
    typing.timer = null;
    if (this.closed || this.typing.get(id) !== typing) return;
    this.typing.delete(id);
    // From here a keystroke takes a new lock before it is relayed.
    const locked = this.until.delete(id);
    try {
      await this.host.commit();
      // No lock of this instance to end (alone, typing without presence takes none). Typing not
      // yet committed (the store is away) keeps it until it lapses: a writer of the log's text
      // elsewhere then revokes that typing in the log before writing over it, where with no lock
      // in the log it would write over it unfenced, and the commit could land after.
      if (!locked || this.closed || this.until.has(id) || this.typing.has(id) || this.host.uncommitted(id)) return;
      await this.host.execute(QueueEditLock.parse({ type: "queue.editLock", queueItemId: id, holder: this.host.holder, forMs: 0 }), typing.client.actor);
    } catch (err) {
      // Refused: the item left the queue, and its lock with it. Otherwise the lock lapses by itself.
      if (!(err instanceof DomainError)) this.host.logger.warn({ err, threadId: this.host.threadId, queueItemId: id }, "could not end an edit lock; it lapses");
    }
  }

  /**
   * Takes the lock, trying again while the store is away: until it is in the log, the
   * keystrokes stay on this instance. Let out without it, another instance could write the
   * log's older text over them (it sees no lock), after their commit had already landed
   * (`npm run chaos`, restart-postgres seed 12: the agent got text the device was told was
   * refused). During an outage other instances' devices see this typing late, not wrongly.
   */
  private take(id: string, forMs: number, actor: string): Promise<void> {
    const running = this.taking.get(id);
    if (running) return running.done;
    const command = QueueEditLock.parse({ type: "queue.editLock", queueItemId: id, holder: this.host.holder, forMs });
    const attempt = async (): Promise<void> => {
      const asked = Date.now();
      try {
        await this.host.execute(command, actor);
        this.until.set(id, asked + forMs);
      } catch (err) {
        // The commit waits for these keystrokes to leave: it is started, not awaited.
        if (err instanceof DomainError) return void this.host.commit();
        if (this.closed) return;
        this.host.logger.warn({ err, threadId: this.host.threadId, queueItemId: id }, "could not lock an item being typed in; trying again");
        await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS).unref());
        if (!this.closed) return attempt();
      }
    };
    let land!: () => void;
    const done: Promise<void> = new Promise<void>((resolve) => {
      land = resolve;
      void attempt().then(resolve, resolve);
    }).finally(() => {
      if (this.taking.get(id) === taking) this.taking.delete(id);
    });
    const taking = { done, land };
    this.taking.set(id, taking);
    return done;
  }
}
