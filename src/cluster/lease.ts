/**
 * Exclusive ownership of a named piece of work (a thread's timers, the periodic sweep)
 * across instances. Correctness never depends on it (the claim is an optimistic append);
 * it keeps N instances from doing the same work N times.
 */
export interface Lease {
  /** Runs `fn` holding `key`; returns `{ acquired: false }` at once if another holder has it. */
  tryWith<T>(key: string, fn: () => Promise<T>): Promise<{ acquired: true; value: T } | { acquired: false }>;
  close(): Promise<void>;
}

export class InProcessLease implements Lease {
  private readonly held = new Set<string>();

  async tryWith<T>(key: string, fn: () => Promise<T>) {
    if (this.held.has(key)) return { acquired: false } as const;
    this.held.add(key);
    try {
      return { acquired: true, value: await fn() } as const;
    } finally {
      this.held.delete(key);
    }
  }

  async close(): Promise<void> {}
}
