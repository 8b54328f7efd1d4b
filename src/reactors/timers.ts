/** setTimeout's delay is a signed 32-bit number of milliseconds; longer waits fire early and re-arm. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * At most one pending wake-up per key, at the earliest time asked for. A thread needs only
 * one: whatever it waits for (a dispatch timeout, a retry backoff), the answer is to look at
 * it again then.
 */
export class KeyedTimers {
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();

  constructor(
    private readonly now: () => Date,
    private readonly fire: (key: string) => void,
  ) {}

  /** Wake `key` at `at` unless it is already due to wake earlier. */
  at(key: string, at: Date): void {
    const when = at.getTime();
    const existing = this.timers.get(key);
    if (existing && existing.at <= when) return;
    if (existing) clearTimeout(existing.timer);
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, when - this.now().getTime()));
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.fire(key);
    }, delay);
    this.timers.set(key, { at: when, timer });
  }

  cancel(key: string): void {
    const existing = this.timers.get(key);
    if (!existing) return;
    clearTimeout(existing.timer);
    this.timers.delete(key);
  }

  clear(): void {
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
