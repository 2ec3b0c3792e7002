const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d{1,9})([smhd])$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/** A duration (`90s`, `10m`, `2h`, `1d`) in seconds, for `fortctl log-level --for`. */
export function parseDurationSeconds(text: string): number {
  const m = DURATION.exec(text.trim());
  if (!m) throw new RangeError(`expected a duration such as 90s, 10m, 2h, 1d, got ${JSON.stringify(text)}`);
  return (Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]) / 1000;
}

/**
 * `--since` of `fortctl audit`: a duration back from `now` (`90s`, `30m`, `1h`, `2d`) or an
 * ISO 8601 time (`2024-05-01T12:00:00Z`; without an offset it is local time, as `Date` reads it).
 */
export function parseSince(text: string, now: Date): Date {
  const t = text.trim();
  const duration = DURATION.exec(t);
  const at = duration
    ? new Date(now.getTime() - Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS])
    : ISO_TIME.test(t)
      ? new Date(t)
      : undefined;
  if (!at || Number.isNaN(at.getTime())) {
    throw new RangeError(
      `expected a duration such as 30m, 1h, 2d or an ISO time such as 2024-05-01T12:00:00Z, got ${JSON.stringify(text)}`,
    );
  }
  return at;
}
