/**
 * A least-recently-used map of at most `max` entries (a Map keeps insertion order, so
 * a hit is moved to the end and the first key is the eldest). `onEvict` runs for every
 * entry that leaves, by eviction or `clear()`, e.g. to close a database handle.
 */
export function createLru<K, V>(max: number, onEvict: (key: K, value: V) => void = () => {}) {
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`LRU size must be a positive integer, got ${max}`);
  const entries = new Map<K, V>();
  return {
    get(key: K): V | undefined {
      const value = entries.get(key);
      if (value === undefined) return undefined;
      entries.delete(key);
      entries.set(key, value);
      return value;
    },
    set(key: K, value: V): void {
      entries.delete(key);
      entries.set(key, value);
      while (entries.size > max) {
        const [eldest, gone] = entries.entries().next().value as [K, V];
        entries.delete(eldest);
        onEvict(eldest, gone);
      }
    },
    delete(key: K): void {
      const value = entries.get(key);
      if (value === undefined) return;
      entries.delete(key);
      onEvict(key, value);
    },
    get size(): number {
      return entries.size;
    },
    clear(): void {
      const all = [...entries];
      entries.clear();
      for (const [k, v] of all) onEvict(k, v);
    },
  };
}
