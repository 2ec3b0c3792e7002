import { describe, expect, it } from 'vitest';
import {
  RETRY_AFTER_MAX_MS,
  RETRY_AFTER_MIN_MS,
  clampRetryAfter,
  describeWait,
  parseHttpDate,
  parseRetryAfter,
  retryAfterFrom,
} from '../../../lib/retry-after.js';

const NOW = Date.UTC(2026, 10, 23, 10, 0, 0); // Mon, 23 Nov 2026 10:00:00 GMT

describe('parseRetryAfter (RFC 9110 §10.2.3)', () => {
  it('delta-seconds: digits only, as milliseconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter('0', NOW)).toBe(0);
    expect(parseRetryAfter(' 7 ', NOW)).toBe(7000); // optional whitespace around the field value
    expect(parseRetryAfter('007', NOW)).toBe(7000);
  });

  it('a huge delta comes back huge (clamping is separate), even past what a number holds exactly', () => {
    expect(parseRetryAfter('99999999999', NOW)).toBe(99_999_999_999_000);
    expect(parseRetryAfter('9'.repeat(400), NOW)).toBe(Infinity);
    expect(clampRetryAfter(parseRetryAfter('9'.repeat(400), NOW)!)).toBe(RETRY_AFTER_MAX_MS);
  });

  it('negative, fractional, signed, exponent, units, lists and garbage are malformed (undefined)', () => {
    for (const v of ['-5', '+5', '1.5', '1e3', '5s', '5 s', '0x10', '5, 6', 'soon', 'NaN', 'Infinity', '', '   '])
      expect([v, parseRetryAfter(v, NOW)]).toEqual([v, undefined]);
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
  });

  it('HTTP-date, all three forms: the time until then, from now', () => {
    expect(parseRetryAfter('Mon, 23 Nov 2026 10:02:00 GMT', NOW)).toBe(120_000);
    expect(parseRetryAfter('Monday, 23-Nov-26 10:02:00 GMT', NOW)).toBe(120_000);
    expect(parseRetryAfter('Mon Nov 23 10:02:00 2026', NOW)).toBe(120_000);
    expect(parseRetryAfter('Tue Dec  1 10:00:00 2026', NOW)).toBe(8 * 86_400_000);
    expect(parseRetryAfter(new Date(NOW + 5000).toUTCString(), new Date(NOW))).toBe(5000);
  });

  it('an HTTP-date in the past asks for no wait (0), never a negative one', () => {
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', NOW)).toBe(0);
  });

  it('malformed dates: other shapes Date.parse would take, impossible days and times, other zones', () => {
    for (const v of [
      '2026-11-23T10:02:00Z',
      'Mon, 23 Nov 2026 10:02:00 +0000',
      'Mon, 23 Nov 2026 10:02:00 UTC',
      'mon, 23 nov 2026 10:02:00 gmt',
      'Mon, 23 Nov 26 10:02:00 GMT',
      'Mon, 3 Nov 2026 10:02:00 GMT',
      'Mon, 31 Feb 2026 10:02:00 GMT',
      'Mon, 23 Nov 2026 24:00:00 GMT',
      'Mon, 23 Nov 2026 10:60:00 GMT',
      'Mon, 23 Foo 2026 10:02:00 GMT',
      'Nov 23 2026',
    ])
      expect([v, parseRetryAfter(v, NOW)]).toEqual([v, undefined]);
  });

  it('RFC 850 two-digit years: more than 50 years ahead means the last century', () => {
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW)).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
    expect(parseHttpDate('Friday, 01-Jan-27 00:00:00 GMT', NOW)).toBe(Date.UTC(2027, 0, 1));
    expect(parseHttpDate('Friday, 01-Jan-76 00:00:00 GMT', NOW)).toBe(Date.UTC(2076, 0, 1));
    expect(parseHttpDate('Friday, 01-Jan-77 00:00:00 GMT', NOW)).toBe(Date.UTC(1977, 0, 1));
  });

  it('the first of repeated headers', () => {
    expect(parseRetryAfter(['3', '9'], NOW)).toBe(3000);
  });
});

describe('clampRetryAfter', () => {
  it('holds a wait to 1 s .. 1 h by default', () => {
    expect([RETRY_AFTER_MIN_MS, RETRY_AFTER_MAX_MS]).toEqual([1000, 3_600_000]);
    expect(clampRetryAfter(0)).toBe(1000);
    expect(clampRetryAfter(-5000)).toBe(1000);
    expect(clampRetryAfter(30_000)).toBe(30_000);
    expect(clampRetryAfter(86_400_000)).toBe(3_600_000);
    expect(clampRetryAfter(Infinity)).toBe(3_600_000);
    expect(clampRetryAfter(NaN)).toBe(1000);
  });
  it("takes the caller's own bounds; a max below the min wins", () => {
    expect(clampRetryAfter(30_000, { maxMs: 10_000 })).toBe(10_000);
    expect(clampRetryAfter(10, { minMs: 0 })).toBe(10);
    expect(clampRetryAfter(5000, { maxMs: 200 })).toBe(200);
  });
});

describe('retryAfterFrom (an answer)', () => {
  const res = (statusCode: number, headers: Record<string, string>) => ({ statusCode, headers });

  it('429 and 503 only by default; other statuses when asked', () => {
    expect(retryAfterFrom(res(429, { 'retry-after': '30' }), { now: NOW })).toBe(30_000);
    expect(retryAfterFrom(res(503, { 'retry-after': '30' }), { now: NOW })).toBe(30_000);
    expect(retryAfterFrom(res(500, { 'retry-after': '30' }), { now: NOW })).toBeUndefined();
    expect(retryAfterFrom(res(401, { 'retry-after': '30' }), { now: NOW })).toBeUndefined();
    expect(retryAfterFrom(res(401, { 'retry-after': '30' }), { now: NOW, statuses: [401] })).toBe(30_000);
  });

  it('clamped: at least 1 s, at most 1 h or the given max; none or malformed → undefined', () => {
    expect(retryAfterFrom(res(503, { 'retry-after': '0' }), { now: NOW })).toBe(1000);
    expect(retryAfterFrom(res(503, { 'retry-after': '999999999' }), { now: NOW })).toBe(3_600_000);
    expect(retryAfterFrom(res(503, { 'retry-after': '999' }), { now: NOW, maxMs: 60_000 })).toBe(60_000);
    expect(retryAfterFrom(res(503, {}), { now: NOW })).toBeUndefined();
    expect(retryAfterFrom(res(503, { 'retry-after': 'later' }), { now: NOW })).toBeUndefined();
  });

  it("measures an HTTP-date from the answer's own Date, so a host clock that is off changes nothing", () => {
    const served = 'Mon, 23 Nov 2026 10:00:00 GMT';
    const until = 'Mon, 23 Nov 2026 10:01:30 GMT';
    // The host is 10 minutes behind and 10 minutes ahead: still 90 s.
    for (const skew of [-600_000, 0, 600_000])
      expect(retryAfterFrom(res(429, { date: served, 'retry-after': until }), { now: NOW + skew })).toBe(90_000);
    // Without a (valid) Date: from the host clock.
    expect(retryAfterFrom(res(429, { 'retry-after': until }), { now: NOW + 60_000 })).toBe(30_000);
    expect(retryAfterFrom(res(429, { date: 'yesterday', 'retry-after': until }), { now: NOW })).toBe(90_000);
  });
});

describe('describeWait', () => {
  it('seconds, minutes, hours', () => {
    expect([describeWait(1000), describeWait(90_000), describeWait(600_000), describeWait(3_600_000)]).toEqual([
      '1 s',
      '90 s',
      '10 min',
      '60 min',
    ]);
    expect(describeWait(7_200_000)).toBe('2 h');
  });
});
