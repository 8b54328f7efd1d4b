/**
 * The queries and mutations being answered over tRPC WebSockets, across all of them: a
 * graceful stop lets them finish before it closes the sockets, as it lets HTTP requests in
 * flight finish, so an SDK client's call in flight at a restart is answered (and what was
 * answered is committed) rather than cut with an unknown outcome.
 */
export class SocketCalls {
  private count = 0;
  private stopping = false;
  private waiters: (() => void)[] = [];

  /** A call starts: the function to call when it is answered; null once stopping (refuse it). */
  enter(): (() => void) | null {
    if (this.stopping) return null;
    this.count++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      if (--this.count === 0) for (const wake of this.waiters.splice(0)) wake();
    };
  }

  /** No new calls from now on; resolves once those in flight are answered. */
  stop(): Promise<void> {
    this.stopping = true;
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
