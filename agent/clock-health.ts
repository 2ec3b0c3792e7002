import { assessClock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { HealthRegistry } from './health.js';

/**
 * The `clock` health module: a host clock before the release's build date, or skewed against
 * the cloud, makes TLS and SigV4 fail. Reported (degraded + an error log on each change) while
 * the links keep retrying: fixing NTP fixes the fort without a restart.
 */
export function createClockHealth(deps: {
  health: HealthRegistry;
  builtAt: Date | undefined;
  log: Logger;
  now?: () => Date;
}) {
  const now = deps.now ?? (() => new Date());
  let skewMs: number | undefined;
  let last = '';
  const update = () => {
    const verdict = assessClock(now(), deps.builtAt, skewMs);
    const summary = verdict.ok ? 'ok' : verdict.reason;
    if (summary !== last) {
      if (verdict.ok) deps.log.info({ skewMs }, 'host clock plausible');
      else deps.log.error({ skewMs, builtAt: deps.builtAt?.toISOString() }, `clock problem: ${verdict.reason}`);
      last = summary;
    }
    deps.health.set('clock', verdict.ok ? 'ready' : 'degraded', verdict.ok ? undefined : verdict.reason);
  };
  deps.health.setInfo('clock', () => ({ skewMs: skewMs ?? null, builtAt: deps.builtAt?.toISOString() ?? null }));
  update();
  return {
    /** A server's `Date` header told us how far off we are (ours minus theirs). */
    reportSkew(ms: number | undefined) {
      skewMs = ms;
      update();
    },
  };
}
export type ClockHealth = ReturnType<typeof createClockHealth>;
