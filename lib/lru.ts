/**
 * A least-recently-used map holding at most `max` units (a Map keeps insertion order, so a
 * hit is moved to the end and the first key is the eldest). Each entry counts `weigh(value)`
 * units, 1 by default (e.g. bytes for a cache of response bodies). `onEvict` runs for every
 * entry that leaves, by eviction, replacement or `clear()`, e.g. to close a database handle.
 */
export function createLru<K, V>(
  max: number,
  onEvict: (key: K, value: V) => void = () => {},
  weigh: (value: V) => number = () => 1,
) {
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`LRU size must be a positive integer, got ${max}`);
  const entries = new Map<K, V>();
  let total = 0;
  const remove = (key: K, value: V) => {
    entries.delete(key);
    total -= weigh(value);
    onEvict(key, value);
  };
  return {
    get(key: K): V | undefined {
      const value = entries.get(key);
      if (value === undefined) return undefined;
      entries.delete(key);
      entries.set(key, value);
      return value;
    },
    set(key: K, value: V): void {
      const old = entries.get(key);
      if (weigh(value) > max) {
        // Heavier than the whole map: not kept, and nothing else is pushed out for it.
        if (old !== undefined) remove(key, old);
        return;
      }
      if (old !== undefined && old !== value) remove(key, old);
      else entries.delete(key);
      if (old !== value) total += weigh(value);
      entries.set(key, value);
      while (total > max) {
        const [eldest, gone] = entries.entries().next().value as [K, V];
        remove(eldest, gone);
      }
    },
    delete(key: K): void {
      const value = entries.get(key);
      if (value !== undefined) remove(key, value);
    },
    get size(): number {
      return entries.size;
    },
    /** Units held: the sum of `weigh` over the entries. */
    get weight(): number {
      return total;
    },
    clear(): void {
      const all = [...entries];
      entries.clear();
      total = 0;
      for (const [k, v] of all) onEvict(k, v);
    },
  };
}
