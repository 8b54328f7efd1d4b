/**
 * A Map and a Set that hold no table while empty. A loaded document keeps a dozen small
 * collections of per-item bookkeeping (typing waiting to be committed, moves in flight,
 * edit locks being taken…) that are empty nearly all the time, and an empty `Map` is 184
 * bytes of heap; these are one small object until their first entry, and again after their
 * last. They answer the part of the Map and Set interfaces collab uses. One difference: an
 * iteration begun while empty, or going on when the last entry is removed, does not see
 * entries added after that (nothing in collab adds to a collection it is iterating).
 */
export class SparseMap<K, V> implements Iterable<[K, V]> {
  private map: Map<K, V> | undefined;

  get size(): number {
    return this.map?.size ?? 0;
  }

  get(key: K): V | undefined {
    return this.map?.get(key);
  }

  has(key: K): boolean {
    return this.map?.has(key) ?? false;
  }

  set(key: K, value: V): this {
    (this.map ??= new Map()).set(key, value);
    return this;
  }

  delete(key: K): boolean {
    const deleted = this.map?.delete(key) ?? false;
    if (this.map?.size === 0) this.map = undefined;
    return deleted;
  }

  clear(): void {
    this.map = undefined;
  }

  keys(): IterableIterator<K> {
    return (this.map ?? EMPTY_MAP).keys() as IterableIterator<K>;
  }

  values(): IterableIterator<V> {
    return (this.map ?? EMPTY_MAP).values() as IterableIterator<V>;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return (this.map ?? EMPTY_MAP).entries() as IterableIterator<[K, V]>;
  }
}

export class SparseSet<T> implements Iterable<T> {
  private set: Set<T> | undefined;

  get size(): number {
    return this.set?.size ?? 0;
  }

  has(value: T): boolean {
    return this.set?.has(value) ?? false;
  }

  add(value: T): this {
    (this.set ??= new Set()).add(value);
    return this;
  }

  delete(value: T): boolean {
    const deleted = this.set?.delete(value) ?? false;
    if (this.set?.size === 0) this.set = undefined;
    return deleted;
  }

  [Symbol.iterator](): IterableIterator<T> {
    return (this.set ?? EMPTY_SET).values() as IterableIterator<T>;
  }
}

const EMPTY_MAP: ReadonlyMap<unknown, unknown> = new Map();
const EMPTY_SET: ReadonlySet<unknown> = new Set();
