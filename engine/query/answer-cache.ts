import { createLru } from '../../lib/lru.js';

/**
 * Answers (JSON text) kept per (app, version, table, kind, normalised spec) within a byte budget.
 * Versions are immutable, so an answer never goes stale while its version lives; a deleted
 * version's answers go with it (`forget`), or a question about it would still be answered.
 */
export function createAnswerCache(maxBytes: number) {
  const keysOf = new Map<string, Set<string>>();
  const versionKey = (app: string, version: string) => JSON.stringify([app, version]);
  const lru = createLru<string, { text: string; version: string }>(
    maxBytes,
    (key, v) => {
      const keys = keysOf.get(v.version);
      keys?.delete(key);
      if (keys?.size === 0) keysOf.delete(v.version);
    },
    (v) => v.text.length,
  );
  const stats = { hits: 0, misses: 0 };
  return {
    get(app: string, version: string, question: string): string | undefined {
      const text = lru.get(versionKey(app, version) + question)?.text;
      if (text === undefined) stats.misses++;
      else stats.hits++;
      return text;
    },
    set(app: string, version: string, question: string, text: string): void {
      const v = versionKey(app, version);
      const key = v + question;
      lru.set(key, { text, version: v });
      // Not kept when heavier than the whole budget: then nothing to remember.
      if (lru.get(key) === undefined) return;
      let keys = keysOf.get(v);
      if (!keys) keysOf.set(v, (keys = new Set()));
      keys.add(key);
    },
    forget(app: string, version: string): void {
      for (const key of [...(keysOf.get(versionKey(app, version)) ?? [])]) lru.delete(key);
    },
    stats: () => ({ entries: lru.size, bytes: lru.weight, ...stats }),
  };
}
export type AnswerCache = ReturnType<typeof createAnswerCache>;
