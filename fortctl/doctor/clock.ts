import { assessClock, CLOCK_SKEW_LIMIT_MS } from '../../lib/clock.js';
import { fail, ok, warn, type Check } from './check.js';
import type { Skew } from './endpoints.js';

const seconds = (ms: number) => `${Math.round(Math.abs(ms) / 1000)} s`;

/**
 * The host clock: before this release's build date it is certainly wrong (FAIL: TLS and SigV4
 * fail); off by more than a minute from a server's `Date` header it soon will be (warn).
 */
export function clockCheck(now: Date, builtAt: Date | undefined, skews: readonly Skew[]): Check {
  const built = assessClock(now, builtAt, undefined);
  if (!built.ok) return fail('clock', `${built.reason}: set the time (NTP)`);
  const off = skews.filter((s) => Math.abs(s.skewMs) > CLOCK_SKEW_LIMIT_MS);
  if (off.length > 0)
    return warn(
      'clock',
      `host clock is ${off.map((s) => `${seconds(s.skewMs)} ${s.skewMs > 0 ? 'ahead of' : 'behind'} the ${s.endpoint}`).join(', ')} (more than ${seconds(CLOCK_SKEW_LIMIT_MS)}: TLS and SigV4 break at 5 min): check NTP`,
    );
  const against =
    skews.length > 0
      ? `within ${seconds(Math.max(...skews.map((s) => Math.abs(s.skewMs))))} of ${skews.map((s) => `the ${s.endpoint}`).join(', ')}`
      : 'no server answered with a Date header to compare with';
  return ok(
    'clock',
    `${now.toISOString()}${builtAt ? `, after the build date ${builtAt.toISOString().slice(0, 10)}` : ''}; ${against}`,
  );
}
