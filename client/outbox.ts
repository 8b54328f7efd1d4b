import type { inferRouterInputs } from "@trpc/server";
import type { AppRouter } from "./router-types.js";

type AddInput = inferRouterInputs<AppRouter>["queue"]["add"];

/**
 * A message written while the device could not reach the server. Its `messageId` is fixed
 * when it is written: the server's `queue.add` is idempotent by message id, so sending it
 * again after a lost answer queues it once.
 */
export interface OutboxEntry {
  threadId: string;
  messageId: string;
  text: string;
  attachments?: AddInput["message"]["attachments"];
  options?: AddInput["options"];
  /** How it goes once sent (a steer written offline is still a steer). */
  delivery?: AddInput["delivery"];
  authorName?: AddInput["authorName"];
  /** Written order on this device: entries are sent in it. */
  seq: number;
  createdAt: string;
}

/** Where unsent messages wait: memory in Node, IndexedDB in the browser (they survive a reload). */
export interface OutboxStore {
  list(threadId: string): Promise<OutboxEntry[]>;
  put(entry: OutboxEntry): Promise<void>;
  remove(threadId: string, messageId: string): Promise<void>;
}

export class MemoryOutbox implements OutboxStore {
  private readonly entries = new Map<string, OutboxEntry>();

  async list(threadId: string): Promise<OutboxEntry[]> {
    return [...this.entries.values()].filter((e) => e.threadId === threadId).sort((a, b) => a.seq - b.seq);
  }

  async put(entry: OutboxEntry): Promise<void> {
    this.entries.set(`${entry.threadId}\0${entry.messageId}`, entry);
  }

  async remove(threadId: string, messageId: string): Promise<void> {
    this.entries.delete(`${threadId}\0${messageId}`);
  }
}

const STORE = "outbox";

/** The browser's outbox: one IndexedDB object store keyed by thread and message id. */
export class IndexedDbOutbox implements OutboxStore {
  private readonly db: Promise<IDBDatabase>;

  constructor(name = "turnqueue") {
    this.db = new Promise((resolve, reject) => {
      const open = indexedDB.open(name, 1);
      open.onupgradeneeded = () => open.result.createObjectStore(STORE, { keyPath: ["threadId", "messageId"] });
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
  }

  async list(threadId: string): Promise<OutboxEntry[]> {
    const all = await this.request<OutboxEntry[]>("readonly", (store) => store.getAll());
    return all.filter((e) => e.threadId === threadId).sort((a, b) => a.seq - b.seq);
  }

  async put(entry: OutboxEntry): Promise<void> {
    await this.request("readwrite", (store) => store.put(entry));
  }

  async remove(threadId: string, messageId: string): Promise<void> {
    await this.request("readwrite", (store) => store.delete([threadId, messageId]));
  }

  private async request<T>(mode: IDBTransactionMode, run: (store: IDBObjectStore) => IDBRequest): Promise<T> {
    const db = await this.db;
    return new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = run(tx.objectStore(STORE));
      // Resolved once committed: an acknowledged write survives a reload that follows at once.
      tx.oncomplete = () => resolve(request.result as T);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }
}

/** IndexedDB where there is one (browsers), memory elsewhere. */
export const defaultOutbox = (): OutboxStore => (typeof indexedDB === "undefined" ? new MemoryOutbox() : new IndexedDbOutbox());
