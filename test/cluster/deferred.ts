/** A promise with its resolve at hand (Promise.withResolvers needs Node 22). */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
