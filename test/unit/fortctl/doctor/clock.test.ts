import { describe, expect, it } from 'vitest';
import { clockCheck } from '../../../../fortctl/doctor/clock.js';

describe('doctor clockCheck', () => {
  const now = new Date('2026-06-01T12:00:00Z');
  const built = new Date('2026-05-01T00:00:00Z');

  it("fails a clock before the release's build date, whatever the servers say", () => {
    const c = clockCheck(new Date('1970-01-01T00:00:10Z'), built, [{ endpoint: 'cloud API', skewMs: 0 }]);
    expect(c).toEqual({
      name: 'clock',
      level: 'fail',
      detail:
        "host clock 1970-01-01T00:00:10.000Z is before this release's build date 2026-05-01T00:00:00.000Z: set the time (NTP)",
    });
  });

  it('warns about each server more than a minute off, with the direction', () => {
    const c = clockCheck(now, built, [
      { endpoint: 'cloud API', skewMs: 2000 },
      { endpoint: 'credentials provider', skewMs: -600_400 },
      { endpoint: 'IoT endpoint', skewMs: 61_000 },
    ]);
    expect(c.level).toBe('warn');
    expect(c.detail).toMatch(
      /^host clock is 600 s behind the credentials provider, 61 s ahead of the IoT endpoint \(more than 60 s/,
    );
  });

  it('is ok within a minute, naming what it compared with', () => {
    expect(
      clockCheck(now, built, [
        { endpoint: 'cloud API', skewMs: 800 },
        { endpoint: 'IoT endpoint', skewMs: -1200 },
      ]),
    ).toEqual({
      name: 'clock',
      level: 'ok',
      detail:
        '2026-06-01T12:00:00.000Z, after the build date 2026-05-01; within 1 s of the cloud API, the IoT endpoint',
    });
    expect(clockCheck(now, undefined, []).detail).toBe(
      '2026-06-01T12:00:00.000Z; no server answered with a Date header to compare with',
    );
  });
});
