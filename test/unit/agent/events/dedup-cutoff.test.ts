import { describe, expect, it } from 'vitest';
import { createDedupCutoff } from '../../../../agent/events/dedup-cutoff.js';

const HOUR = 3_600_000;

describe('the dedupe window under clock jumps', () => {
  it('follows the wall clock while it runs true; a jump forward a day forgets nothing early; one back an hour keeps ids longer', () => {
    let wall = Date.parse('2026-12-05T12:00:00Z');
    let mono = 1_000;
    const tick = (ms: number) => ((wall += ms), (mono += ms));
    const cutoff = createDedupCutoff({ windowMs: 48 * HOUR, now: () => wall, monotonic: () => mono });
    tick(HOUR);
    expect(cutoff.next().toISOString()).toBe('2026-12-03T13:00:00.000Z');
    // The host clock jumps a day forward: the cutoff moves on only by the hour that passed.
    wall += 24 * HOUR;
    tick(HOUR);
    expect(cutoff.next().toISOString()).toBe('2026-12-03T14:00:00.000Z');
    // ... and back an hour (still 23 h ahead of true time): it follows real time, never backwards past a forgotten id.
    wall -= HOUR;
    tick(HOUR);
    expect(cutoff.next().toISOString()).toBe('2026-12-03T15:00:00.000Z');
    // A clock set back behind true time: the window follows it back (ids kept longer).
    wall -= 30 * HOUR;
    tick(HOUR);
    expect(cutoff.next().toISOString()).toBe('2026-12-03T09:00:00.000Z');
  });
});
