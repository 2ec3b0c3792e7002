import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pino } from 'pino';
import { openAuditStore, type AuditStore } from '../../../../agent/audit/store.js';
import { createAuditWriter } from '../../../../agent/audit/writer.js';
import { createDenialCounter } from '../../../../agent/audit/denials.js';
import { createAuditReader } from '../../../../agent/audit/reader.js';
import { tempDir } from '../../../helpers/fort.js';

/**
 * Anonymous refusals on a real audit.db: the first per (IP, reason) and minute written as it
 * happens, the minute's repeats as one row with their count, so a flood grows the trail by rows
 * per minute, not per request.
 */

const log = pino({ level: 'silent' });
const T0 = Date.parse('2026-12-05T10:00:00.000Z');
let store: AuditStore | undefined;
afterEach(() => {
  store?.close();
  store = undefined;
});

function rig(maxSources?: number) {
  store = openAuditStore({ path: join(tempDir('denials'), 'audit.db'), retentionDays: 30, log });
  const clock = { now: T0 };
  const audit = createAuditWriter({ db: store.db, log });
  const denials = createDenialCounter({ audit, log, now: () => clock.now, ...(maxSources ? { maxSources } : {}) });
  const reader = createAuditReader(store.db);
  const rows = () => {
    audit.flush();
    type Detail = { decision: string; reason: string; ip: string; requestId: string; count?: number; until?: string };
    return reader.since(new Date(0), 1000).map((e) => ({ ts: e.ts, target: e.target, ...(e.detail as Detail) }));
  };
  const refuse = (ip: string, reason: string, n: number, stepMs = 10, from = 0) => {
    for (let i = 0; i < n; i++) {
      denials.record({
        ip,
        reason,
        target: `GET /api/v1/apps/${from + i}`,
        requestId: `r-${ip}-${reason}-${from + i}`,
      });
      clock.now += stepMs;
    }
  };
  return { clock, denials, rows, refuse };
}

describe('anonymous refusals, per source and minute', () => {
  it('a flood of 5 000 from one host is two rows: the first at once, then the count of the rest', () => {
    const r = rig();
    r.refuse('10.0.0.9', 'bad_signature', 5000, 10); // 50 s
    const first = {
      ts: new Date(T0).toISOString(),
      target: 'GET /api/v1/apps/0',
      decision: 'deny',
      reason: 'bad_signature',
      ip: '10.0.0.9',
      requestId: 'r-10.0.0.9-bad_signature-0',
    };
    expect(r.rows()).toEqual([first]);
    r.denials.close();
    expect(r.rows()).toEqual([
      first,
      {
        ts: new Date(T0 + 10).toISOString(),
        target: 'GET /api/v1/apps/1',
        decision: 'deny',
        reason: 'bad_signature',
        ip: '10.0.0.9',
        count: 4999,
        until: new Date(T0 + 4999 * 10).toISOString(),
        requestId: 'r-10.0.0.9-bad_signature-1',
      },
    ]);
  });

  it('keeps hosts and reasons apart, and starts over each minute', () => {
    const r = rig();
    r.refuse('10.0.0.1', 'missing_token', 3, 1000);
    r.refuse('10.0.0.2', 'missing_token', 2, 1000);
    r.refuse('10.0.0.1', 'expired', 1, 1000);
    r.clock.now = T0 + 60_000; // the next minute: the last one's repeats are written, counting starts again
    r.refuse('10.0.0.1', 'missing_token', 2, 1000, 100);
    r.denials.close();
    const summary = r.rows().map((e) => [e.ip, e.reason, e.count ?? 'first', e.requestId]);
    expect(summary).toEqual([
      ['10.0.0.1', 'missing_token', 'first', 'r-10.0.0.1-missing_token-0'],
      ['10.0.0.2', 'missing_token', 'first', 'r-10.0.0.2-missing_token-0'],
      ['10.0.0.1', 'expired', 'first', 'r-10.0.0.1-expired-0'],
      ['10.0.0.1', 'missing_token', 2, 'r-10.0.0.1-missing_token-1'],
      ['10.0.0.2', 'missing_token', 1, 'r-10.0.0.2-missing_token-1'],
      ['10.0.0.1', 'missing_token', 'first', 'r-10.0.0.1-missing_token-100'],
      ['10.0.0.1', 'missing_token', 1, 'r-10.0.0.1-missing_token-101'],
    ]);
  });

  it('past maxSources hosts in a minute, the rest are counted together as "*"', () => {
    const r = rig(2);
    for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']) r.refuse(ip, 'malformed', 3);
    r.denials.close();
    const rows = r.rows();
    expect(rows.map((e) => [e.ip, e.count ?? 'first'])).toEqual([
      ['10.0.0.1', 'first'],
      ['10.0.0.2', 'first'],
      ['*', 'first'],
      ['10.0.0.1', 2],
      ['10.0.0.2', 2],
      ['*', 5],
    ]);
    // Every refusal is counted somewhere: 12 requests.
    expect(rows.reduce((n, e) => n + (e.count ?? 1), 0)).toBe(12);
  });
});
