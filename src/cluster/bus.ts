/**
 * How instances tell each other what happened: committed events, Yjs updates, awareness.
 * In-process by default; Redis pub/sub when several processes share one database.
 * Delivery is at-most-once and asynchronous: subscribers must tolerate loss (the log and
 * the document state in the store are the truth; the bus only makes things fast).
 */
export interface Bus {
  /** Whether other instances can be at the other end (false: this process is the only one). */
  readonly shared: boolean;
  publish(channel: string, message: Uint8Array): Promise<void>;
  /** Resolves once the subscription is live; the returned function ends it. */
  subscribe(channel: string, handler: (message: Uint8Array) => void): Promise<() => Promise<void>>;
  /**
   * Calls `listener` each time the link to the other instances came back after it was lost
   * (its subscriptions live again): whatever was published meanwhile is lost for this
   * instance and this instance's messages for the others, so every subscriber reads again
   * what it may have missed. Returns the function that stops listening.
   */
  onReconnected(listener: () => void): () => void;
  close(): Promise<void>;
}

/** Channel names, in one place. */
export const channels = {
  /** JSON array of StoredEvent, per committed command. */
  events: "tq:events",
  /** Yjs update bytes framed by encodeDocMessage (origin instance + payload). */
  doc: (threadId: string) => `tq:doc:${threadId}`,
  awareness: (threadId: string) => `tq:awareness:${threadId}`,
} as const;

export class InProcessBus implements Bus {
  readonly shared = false;
  private readonly handlers = new Map<string, Set<(m: Uint8Array) => void>>();

  async publish(channel: string, message: Uint8Array): Promise<void> {
    const set = this.handlers.get(channel);
    if (!set) return;
    // Asynchronous like a real broker, so no subscriber runs inside the publisher's stack.
    for (const handler of [...set]) queueMicrotask(() => handler(message));
  }

  async subscribe(channel: string, handler: (m: Uint8Array) => void) {
    let set = this.handlers.get(channel);
    if (!set) this.handlers.set(channel, (set = new Set()));
    set.add(handler);
    return async () => {
      set.delete(handler);
      if (set.size === 0) this.handlers.delete(channel);
    };
  }

  /** One process: the link is never lost. */
  onReconnected(): () => void {
    return () => {};
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
