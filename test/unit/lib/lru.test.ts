import { describe, expect, it } from 'vitest';
import { createLru } from '../../../lib/lru.js';

describe('LRU map', () => {
  it('evicts the least recently used entry and reports every eviction', () => {
    const evicted: string[] = [];
    const lru = createLru<string, number>(2, (k) => evicted.push(k));
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1); // a is now the most recent
    lru.set('c', 3);
    expect(evicted).toEqual(['b']);
    expect(lru.get('b')).toBeUndefined();
    lru.clear();
    expect(evicted).toEqual(['b', 'a', 'c']);
    expect(lru.size).toBe(0);
  });

  it('bounds by weight when given one, and tracks it through replace and delete', () => {
    const evicted: string[] = [];
    const lru = createLru<string, string>(
      10,
      (k) => evicted.push(k),
      (v) => v.length,
    );
    lru.set('a', 'xxxx');
    lru.set('b', 'yyyy');
    expect(lru.weight).toBe(8);
    lru.set('a', 'zz'); // replacing counts the new value only
    expect(lru.weight).toBe(6);
    expect(evicted).toEqual(['a']);
    lru.set('c', 'wwwwww'); // 12 > 10: the eldest (b) goes
    expect(evicted).toEqual(['a', 'b']);
    expect([lru.get('a'), lru.get('b'), lru.get('c')]).toEqual(['zz', undefined, 'wwwwww']);
    lru.delete('c');
    expect(lru.weight).toBe(2);
    lru.set('huge', 'x'.repeat(11)); // heavier than the whole cache: not kept
    expect(lru.get('huge')).toBeUndefined();
    expect(lru.weight).toBe(2);
  });

  it('refuses a size below one', () => {
    expect(() => createLru(0)).toThrow(RangeError);
  });
});
