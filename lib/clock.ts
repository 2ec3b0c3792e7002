import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** SigV4 allows ±5 min; report well before that. */
export const CLOCK_SKEW_LIMIT_MS = 60_000;

export type ClockVerdict = { ok: true } | { ok: false; reason: string };

/**
 * Is the host clock plausible? Before this release's build date it is certainly wrong; off
 * against a server's `Date` header by more than the limit it will break TLS and SigV4.
 * `skewMs` is ours minus the server's (positive: we are ahead).
 */
export function assessClock(now: Date, builtAt: Date | undefined, skewMs: number | undefined): ClockVerdict {
  if (builtAt && now.getTime() < builtAt.getTime()) {
    return {
      ok: false,
      reason: `host clock ${now.toISOString()} is before this release's build date ${builtAt.toISOString()}`,
    };
  }
  if (skewMs !== undefined && Math.abs(skewMs) > CLOCK_SKEW_LIMIT_MS) {
    return {
      ok: false,
      reason: `host clock is ${Math.round(Math.abs(skewMs) / 1000)} s ${skewMs > 0 ? 'ahead of' : 'behind'} the cloud`,
    };
  }
  return { ok: true };
}

/** The build date recorded by `npm run build` in dist/build-info.json of a release. */
export function readBuildDate(releaseRoot: string): Date | undefined {
  const file = join(releaseRoot, 'dist', 'build-info.json');
  if (!existsSync(file)) return undefined;
  const at = Date.parse((JSON.parse(readFileSync(file, 'utf8')) as { builtAt?: string }).builtAt ?? '');
  return Number.isFinite(at) ? new Date(at) : undefined;
}
