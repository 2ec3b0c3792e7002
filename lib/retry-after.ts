import type { IncomingHttpHeaders } from 'node:http';

/** The shortest wait a server's Retry-After can ask for: `0` or a past date is not a busy loop. */
export const RETRY_AFTER_MIN_MS = 1000;
/** The longest: a broken or hostile server must not park a fort for days. */
export const RETRY_AFTER_MAX_MS = 3_600_000;

const DAY = '(Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAY = '(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
/** `Sun, 06 Nov 1994 08:49:37 GMT` (the one senders must use). */
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
/** `Sunday, 06-Nov-94 08:49:37 GMT` (obsolete, still to be accepted). */
const RFC850_DATE = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
/** `Sun Nov  6 08:49:37 1994` (obsolete, C's asctime; the time is UTC). */
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/**
 * An HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms a
 * recipient must also accept) as epoch milliseconds, or undefined. Not `Date.parse`: that takes
 * many other shapes and reads asctime as local time. The weekday is not checked against the date.
 */
export function parseHttpDate(text: string, now: number = Date.now()): number | undefined {
  let day: string, month: string, year: number, time: [string, string, string];
  let m = IMF_FIXDATE.exec(text);
  if (m) {
    [day, month, year, time] = [m[2]!, m[3]!, Number(m[4]), [m[5]!, m[6]!, m[7]!]];
  } else if ((m = RFC850_DATE.exec(text))) {
    // A two-digit year more than 50 years ahead is the latest past year with those digits.
    const yy = Number(m[4]);
    const thisYear = new Date(now).getUTCFullYear();
    year = Math.floor(thisYear / 100) * 100 + yy;
    if (year > thisYear + 50) year -= 100;
    [day, month, time] = [m[2]!, m[3]!, [m[5]!, m[6]!, m[7]!]];
  } else if ((m = ASCTIME_DATE.exec(text))) {
    [month, day, time, year] = [m[2]!, m[3]!.trim(), [m[4]!, m[5]!, m[6]!], Number(m[7])];
  } else return undefined;
  const [d, mo, h, mi, s] = [Number(day), MONTHS.indexOf(month), Number(time[0]), Number(time[1]), Number(time[2])];
  // 60: a leap second, as the grammar allows; it lands on the next minute.
  if (h > 23 || mi > 59 || s > 60) return undefined;
  const at = Date.UTC(year, mo, d, h, mi, s);
  // 31 Feb and the like roll over into the next month: refuse them.
  return new Date(Date.UTC(year, mo, d)).getUTCDate() === d ? at : undefined;
}

/**
 * A `Retry-After` value (RFC 9110 §10.2.3) as milliseconds to wait from `now`, or undefined
 * when there is none or it is malformed (then the caller's own backoff applies). Delta-seconds
 * are digits only (no sign, fraction or exponent; a huge one comes back huge, for
 * `clampRetryAfter`); an HTTP-date in the past gives 0. `now` is the time the date is measured
 * from: the answer's own `Date` when it has one (see `retryAfterFrom`), so a host clock that is
 * off does not stretch or shrink the wait.
 */
export function parseRetryAfter(header: string | string[] | undefined, now: number | Date): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const reference = typeof now === 'number' ? now : now.getTime();
  const at = parseHttpDate(value, reference);
  return at === undefined ? undefined : Math.max(0, at - reference);
}

/** A wait held to [min, max] (default 1 s .. 1 h); a max below the min wins. */
export function clampRetryAfter(ms: number, bounds: { minMs?: number; maxMs?: number } = {}): number {
  const max = bounds.maxMs ?? RETRY_AFTER_MAX_MS;
  const min = Math.min(bounds.minMs ?? RETRY_AFTER_MIN_MS, max);
  return Math.min(max, Math.max(min, Number.isNaN(ms) ? min : ms));
}

/**
 * The wait an answer asks for: its `Retry-After` when the status is one that carries a retry
 * hint (429 and 503 by default; a Mender `auth_requests` 401 for a pending device also does),
 * clamped to [1 s, `maxMs` (default 1 h)]; undefined otherwise. An HTTP-date is measured from
 * the answer's `Date` header when it has a valid one, else from `now`.
 */
export function retryAfterFrom(
  res: { statusCode: number; headers: IncomingHttpHeaders },
  opts: { now?: number; maxMs?: number; statuses?: readonly number[] } = {},
): number | undefined {
  if (!(opts.statuses ?? [429, 503]).includes(res.statusCode)) return undefined;
  const now = opts.now ?? Date.now();
  const served = res.headers.date ? parseHttpDate(res.headers.date, now) : undefined;
  const ms = parseRetryAfter(res.headers['retry-after'], served ?? now);
  return ms === undefined ? undefined : clampRetryAfter(ms, opts.maxMs === undefined ? {} : { maxMs: opts.maxMs });
}

/** "30 s", "1 h" — for messages and logs. */
export function describeWait(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}
