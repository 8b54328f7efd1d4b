import type { StoredEvent } from "../domain/index.js";
import { ThreadDoc, type ThreadDocDeps } from "./thread-doc.js";

/**
 * The loaded documents of this instance: one per thread with clients (or with clients until
 * `idleMs` ago). A document is loaded once, however many clients ask at once, and a thread
 * is loaded again only after its previous unload has stored everything.
 */
export class DocRegistry {
  private readonly docs = new Map<string, Promise<ThreadDoc>>();
  /** The documents of `docs` whose load is done, for a look that must not wait. */
  private readonly loaded = new Map<string, ThreadDoc>();
  private readonly unloading = new Map<string, Promise<void>>();
  private readonly idleTimers = new Map<string, NodeJS.Timeout>();

  /** What every document is given: one object for all of them (one each is memory each holds). */
  private readonly deps: ThreadDocDeps;

  constructor(
    deps: Omit<ThreadDocDeps, "onGone">,
    private readonly idleMs: number,
    private readonly onGone: (doc: ThreadDoc) => void,
    /** Told of each load and unload (metrics and the log). */
    private readonly observe: { loaded(threadId: string): void; unloaded(threadId: string): void } = { loaded() {}, unloaded() {} },
  ) {
    this.deps = { ...deps, onGone: (id) => this.gone(id) };
  }

  get size(): number {
    return this.docs.size;
  }

  async open(threadId: string): Promise<ThreadDoc> {
    for (;;) {
      const unloading = this.unloading.get(threadId);
      if (unloading) await unloading;
      let loading = this.docs.get(threadId);
      if (!loading) {
        loading = ThreadDoc.load(threadId, this.deps);
        this.docs.set(threadId, loading);
        loading.then((doc) => {
          if (this.docs.get(threadId) === loading) this.loaded.set(threadId, doc);
          this.observe.loaded(threadId);
        }, () => {});
        loading.catch(() => {
          if (this.docs.get(threadId) === loading) this.docs.delete(threadId);
        });
      }
      const doc = await loading;
      if (!doc.closed) {
        this.cancelIdle(threadId);
        return doc;
      }
    }
  }

  /** The loaded (or loading) document of a thread, without loading it. */
  peek(threadId: string): Promise<ThreadDoc> | undefined {
    return this.docs.get(threadId);
  }

  /** The thread's document if loaded and open here, without waiting; undefined while it loads. */
  peekLoaded(threadId: string): ThreadDoc | undefined {
    const doc = this.loaded.get(threadId);
    return doc && !doc.closed && this.docs.has(threadId) ? doc : undefined;
  }

  /** Every document loaded and open here. */
  *openDocs(): IterableIterator<ThreadDoc> {
    for (const threadId of this.loaded.keys()) {
      const doc = this.peekLoaded(threadId);
      if (doc) yield doc;
    }
  }

  dispatch(events: readonly StoredEvent[]): void {
    const byThread = new Map<string, StoredEvent[]>();
    for (const event of events) byThread.set(event.threadId, [...(byThread.get(event.threadId) ?? []), event]);
    for (const [threadId, list] of byThread) {
      void this.docs.get(threadId)?.then((doc) => doc.applyEvents(list)).catch(() => {});
    }
  }

  /** A commit of this instance, for its loaded (or loading) document: see ThreadDoc.committedHere. */
  committedHere(events: readonly StoredEvent[]): Promise<void> | undefined {
    const threadId = events[0]?.threadId;
    const loading = threadId === undefined ? undefined : this.docs.get(threadId);
    return loading?.then((doc) => doc.committedHere(events), () => {});
  }

  /** The last client left: unload after the idle delay unless one comes back. */
  idle(doc: ThreadDoc): void {
    if (doc.clients.size > 0 || doc.closed) return;
    this.cancelIdle(doc.threadId);
    const timer = setTimeout(() => {
      this.idleTimers.delete(doc.threadId);
      if (doc.clients.size === 0) void this.unload(doc);
    }, this.idleMs);
    timer.unref();
    this.idleTimers.set(doc.threadId, timer);
  }

  async unload(doc: ThreadDoc): Promise<void> {
    const { threadId } = doc;
    this.cancelIdle(threadId);
    if (this.unloading.has(threadId)) return this.unloading.get(threadId);
    this.docs.delete(threadId);
    this.loaded.delete(threadId);
    this.observe.unloaded(threadId);
    const done = doc.close().finally(() => this.unloading.delete(threadId));
    this.unloading.set(threadId, done);
    return done;
  }

  async closeAll(): Promise<void> {
    const docs = await Promise.allSettled([...this.docs.values()]);
    await Promise.all(docs.map((d) => (d.status === "fulfilled" ? this.unload(d.value) : undefined)));
    await Promise.all(this.unloading.values());
  }

  private gone(threadId: string): void {
    const loading = this.docs.get(threadId);
    this.docs.delete(threadId);
    this.loaded.delete(threadId);
    this.cancelIdle(threadId);
    void loading?.then((doc) => {
      this.onGone(doc);
      this.observe.unloaded(threadId);
      const done = doc.discard().finally(() => this.unloading.delete(threadId));
      this.unloading.set(threadId, done);
    });
  }

  private cancelIdle(threadId: string): void {
    const timer = this.idleTimers.get(threadId);
    if (timer) clearTimeout(timer);
    this.idleTimers.delete(threadId);
  }
}
