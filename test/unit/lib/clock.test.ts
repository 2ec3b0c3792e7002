import { describe, expect, it } from 'vitest';
import { assessClock } from '../../../lib/clock.js';

describe('clock plausibility', () => {
  const built = new Date('2026-11-20T00:00:00Z');
  it('accepts a clock after the build date with small skew', () => {
    expect(assessClock(new Date('2026-11-23T10:00:00Z'), built, 900)).toEqual({ ok: true });
    expect(assessClock(new Date('2026-11-23T10:00:00Z'), undefined, undefined)).toEqual({ ok: true });
  });
  it('flags a host that booted in 1970', () => {
    expect(assessClock(new Date(0), built, undefined)).toEqual({
      ok: false,
      reason: "host clock 1970-01-01T00:00:00.000Z is before this release's build date 2026-11-20T00:00:00.000Z",
    });
  });
  it('flags skew against the server in either direction, with the offset', () => {
    const now = new Date('2026-11-23T10:00:00Z');
    expect(assessClock(now, built, -600_000)).toEqual({ ok: false, reason: 'host clock is 600 s behind the cloud' });
    expect(assessClock(now, built, 75_400)).toEqual({ ok: false, reason: 'host clock is 75 s ahead of the cloud' });
    expect(assessClock(now, built, 60_000)).toEqual({ ok: true });
  });
});
