/**
 * Waiting for something asynchronous to become true, written once for every suite. Both
 * poll without asserting on elapsed time: the deadline is only there to fail with a useful
 * message rather than at the test's own timeout.
 */

/** Polls until `check` holds; fails with `describe()` if it never does. */
export async function until(check: () => boolean | Promise<boolean>, describe: () => unknown = () => "", timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`condition not reached: ${JSON.stringify(describe(), null, 1)}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}

/** Polls until `check` passes (its last failure is the test's failure if it never does); returns its value. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/** A promise and the function that resolves it: a fault's gate, or a sign that something happened. */
export const latch = (): [Promise<void>, () => void] => {
  let resolve!: () => void;
  return [new Promise<void>((r) => (resolve = r)), resolve];
};
