/** How often the parent is looked at: a supervisor's stop waits at most this long extra. */
const CHECK_EVERY_MS = 500;

/**
 * `npm start` under a supervisor: the supervisor's SIGTERM reaches npm, which exits without
 * passing it on, and the server would be left running as an orphan. A server started by an
 * npm script therefore stops as soon as its parent is gone (its parent pid changes when it
 * is re-parented). A server started directly (`turnqueue serve`, `node bin/turnqueue.mjs`)
 * outlives its shell as usual (nohup, `&`).
 */
export function stopWithNpmParent(stop: () => void, env: NodeJS.ProcessEnv = process.env): void {
  if (!env.npm_lifecycle_event) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    stop();
  }, CHECK_EVERY_MS);
  timer.unref();
}
