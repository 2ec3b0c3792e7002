import type { Logger } from '../../lib/logger.js';
import type { AuditWriter } from './writer.js';

/** A refused request from a caller with no verified user (no token, or one that did not verify). */
export interface AnonymousDenial {
  ip: string;
  /** Why the token was refused (user-token.ts TokenRejection). */
  reason: string;
  /** `METHOD path`, the query left out (a token may hide there). */
  target: string;
  requestId: string;
}

/** The repeats of a minute's refusals by one source for one reason (the first was written as it happened). */
interface Tally {
  ip: string;
  reason: string;
  count: number;
  first: number;
  last: number;
  /** The first repeat's. */
  target: string;
  requestId: string;
}

const MINUTE_MS = 60_000;
/** Callers counted apart within a minute; past this, the rest of the minute's are counted as ip "*". */
const MAX_SOURCES = 10_000;

/**
 * Anonymous refusals by (source IP, reason) and minute: the first is audited and logged at once,
 * as it happens; the repeats of the minute become one row and one log line when it ends (a
 * timer) or on close, saying how many, from when to when, and the first repeat's target and id.
 * Without this an unauthenticated host on the LAN could grow the audit database by ~0.5 GB a day
 * at the per-IP rate limit; now by at most two rows per reason a minute. A kill -9 loses at most
 * the count of the minute under way, never a first refusal.
 */
export function createDenialCounter(o: { audit: AuditWriter; log: Logger; now?: () => number; maxSources?: number }) {
  const now = o.now ?? Date.now;
  const maxSources = o.maxSources ?? MAX_SOURCES;
  let minute = -1;
  /** By source and reason: null once the first is written, a tally from the first repeat on. */
  let tallies = new Map<string, Tally | null>();
  let timer: NodeJS.Timeout | undefined;

  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const done = tallies;
    tallies = new Map();
    for (const t of done.values()) {
      if (!t) continue;
      o.audit.write({
        actor: 'anonymous',
        action: 'auth',
        target: t.target,
        at: new Date(t.first),
        detail: {
          decision: 'deny',
          reason: t.reason,
          ip: t.ip,
          count: t.count,
          until: new Date(t.last).toISOString(),
          requestId: t.requestId,
        },
      });
      o.log.warn({ ip: t.ip, reason: t.reason, count: t.count }, 'user tokens refused again within the minute');
    }
  };

  return {
    record(d: AnonymousDenial): void {
      const at = now();
      const m = Math.floor(at / MINUTE_MS);
      if (m !== minute) {
        flush();
        minute = m;
      }
      const ip = tallies.size >= maxSources && !tallies.has(`${d.ip}\u0000${d.reason}`) ? '*' : d.ip;
      const key = `${ip}\u0000${d.reason}`;
      const t = tallies.get(key);
      if (t === undefined) {
        tallies.set(key, null);
        o.audit.write({
          actor: 'anonymous',
          action: 'auth',
          target: d.target,
          at: new Date(at),
          detail: { decision: 'deny', reason: d.reason, ip, requestId: d.requestId },
        });
        o.log.warn({ ip, reason: d.reason, requestId: d.requestId }, 'user token refused');
        return;
      }
      if (t) {
        t.count++;
        t.last = at;
      } else {
        tallies.set(key, {
          ip,
          reason: d.reason,
          count: 1,
          first: at,
          last: at,
          target: d.target,
          requestId: d.requestId,
        });
      }
      // Written once the minute is over even if nothing else comes; never keeps the process alive.
      timer ??= setTimeout(flush, (m + 1) * MINUTE_MS - at + 10).unref();
    },
    flush,
    close: flush,
  };
}
export type DenialCounter = ReturnType<typeof createDenialCounter>;
