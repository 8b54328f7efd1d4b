/**
 * Runs a job per key one at a time, coalescing requests: asking while a run is in progress
 * schedules exactly one more run after it, so a burst of events for one thread costs two
 * looks at it, not one per event, and no event arriving mid-run is missed.
 */
export class SerialPerKey {
  private readonly runs = new Map<string, { again: boolean; done: Promise<void> }>();

  constructor(private readonly job: (key: string) => Promise<void>) {}

  request(key: string): Promise<void> {
    const current = this.runs.get(key);
    if (current) {
      current.again = true;
      return current.done;
    }
    const run = { again: false, done: Promise.resolve() };
    run.done = (async () => {
      try {
        do {
          run.again = false;
          await this.job(key);
        } while (run.again);
      } finally {
        this.runs.delete(key);
      }
    })();
    this.runs.set(key, run);
    return run.done;
  }

  /** Resolves when every run started so far has finished. */
  async idle(): Promise<void> {
    while (this.runs.size > 0) await Promise.allSettled([...this.runs.values()].map((r) => r.done));
  }
}
