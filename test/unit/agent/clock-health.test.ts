import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createClockHealth } from '../../../agent/clock-health.js';
import { createHealthRegistry } from '../../../agent/health.js';

describe('the clock health module', () => {
  it('names a jump of the host clock (wall against monotonic), forward a day and back an hour, for an hour; a true clock is quiet', () => {
    let wall = Date.parse('2026-12-05T12:00:00Z');
    let mono = 5_000;
    const lines: { msg: string; byMs?: number }[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const health = createHealthRegistry();
    const clock = createClockHealth({
      health,
      builtAt: new Date('2026-01-01T00:00:00Z'),
      log,
      now: () => new Date(wall),
      monotonic: () => mono,
      checkMs: 3_600_000,
    });
    const module = () => health.snapshot().modules['clock']!;
    try {
      wall += 5000;
      mono += 5000;
      clock.look();
      expect(module()).toMatchObject({ state: 'ready' });
      expect(module().detail).toBeUndefined();

      wall += 86_400_000 + 5000;
      mono += 5000;
      clock.look();
      expect(module()).toMatchObject({
        state: 'ready',
        detail: 'host clock jumped forward 1d at 2026-12-06T12:00:10.000Z',
        info: { lastJump: { at: '2026-12-06T12:00:10.000Z', byMs: 86_400_000 } },
      });
      wall += 5000 - 3_600_000;
      mono += 5000;
      clock.look();
      expect(module().detail).toBe('host clock jumped back 1h at 2026-12-06T11:00:15.000Z');
      expect(lines.filter((l) => l.msg.startsWith('host clock jumped')).map((l) => l.byMs)).toEqual([
        86_400_000, -3_600_000,
      ]);
      // An hour on (true time), the jump is no longer named.
      wall += 3_600_000;
      mono += 3_600_000;
      clock.look();
      expect(module().detail).toBeUndefined();
    } finally {
      clock.stop();
    }
  });
});
