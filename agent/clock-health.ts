import { assessClock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { HealthRegistry } from './health.js';

/** A difference between the wall clock and the monotonic clock beyond this is a jump (an NTP step, an operator's `date -s`). */
const JUMP_MS = 2000;
/** How long a jump is named in the module's detail. */
const SHOWN_MS = 3_600_000;

const span = (ms: number) => {
  const s = Math.round(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return [d ? `${d}d` : '', h ? `${h}h` : '', m ? `${m}m` : '', s % 60 || s === 0 ? `${s % 60}s` : '']
    .filter(Boolean)
    .join(' ');
};

/**
 * The `clock` health module: a host clock before the release's build date, or skewed against
 * the cloud, makes TLS and SigV4 fail. Reported (degraded + an error log on each change) while
 * the links keep retrying: fixing NTP fixes the fort without a restart. A jump of the host clock
 * (wall clock against the monotonic one, looked at every `checkMs`) is logged and named in the
 * module for an hour: tokens and certificates are judged by the wall clock, so a fort whose
 * users are refused as "expired" after a jump says why. Timers and waits run on the monotonic
 * clock and do not move with it.
 */
export function createClockHealth(deps: {
  health: HealthRegistry;
  builtAt: Date | undefined;
  log: Logger;
  now?: () => Date;
  monotonic?: () => number;
  checkMs?: number;
}) {
  const now = deps.now ?? (() => new Date());
  const monotonic = deps.monotonic ?? (() => performance.now());
  let skewMs: number | undefined;
  let last = '';
  let lastJump: { at: string; byMs: number; seenAtMono: number } | undefined;
  let base = { wall: now().getTime(), mono: monotonic() };
  const update = () => {
    const verdict = assessClock(now(), deps.builtAt, skewMs);
    const summary = verdict.ok ? 'ok' : verdict.reason;
    if (summary !== last) {
      if (verdict.ok) deps.log.info({ skewMs }, 'host clock plausible');
      else deps.log.error({ skewMs, builtAt: deps.builtAt?.toISOString() }, `clock problem: ${verdict.reason}`);
      last = summary;
    }
    const jump =
      lastJump && monotonic() - lastJump.seenAtMono < SHOWN_MS
        ? `host clock jumped ${lastJump.byMs > 0 ? 'forward' : 'back'} ${span(lastJump.byMs)} at ${lastJump.at}`
        : undefined;
    const detail = [verdict.ok ? undefined : verdict.reason, jump].filter(Boolean).join('; ');
    deps.health.set('clock', verdict.ok ? 'ready' : 'degraded', detail || undefined);
  };
  /** Compares how far each clock moved since the last look. */
  const look = () => {
    const wall = now().getTime();
    const mono = monotonic();
    const byMs = wall - base.wall - (mono - base.mono);
    base = { wall, mono };
    if (Math.abs(byMs) > JUMP_MS) {
      lastJump = { at: new Date(wall).toISOString(), byMs: Math.round(byMs), seenAtMono: mono };
      deps.log.warn(
        { byMs: lastJump.byMs },
        `host clock jumped ${byMs > 0 ? 'forward' : 'back'} ${span(byMs)}: tokens and certificates are judged by the new time; timers are not affected`,
      );
    }
    update();
  };
  deps.health.setInfo('clock', () => ({
    skewMs: skewMs ?? null,
    builtAt: deps.builtAt?.toISOString() ?? null,
    lastJump: lastJump ? { at: lastJump.at, byMs: lastJump.byMs } : null,
  }));
  update();
  const timer = setInterval(look, deps.checkMs ?? 5000).unref();
  return {
    /** A server's `Date` header told us how far off we are (ours minus theirs). */
    reportSkew(ms: number | undefined) {
      skewMs = ms;
      update();
    },
    /** Looks for a jump now (tests; the timer does it every `checkMs`). */
    look,
    stop: () => clearInterval(timer),
  };
}
export type ClockHealth = ReturnType<typeof createClockHealth>;
