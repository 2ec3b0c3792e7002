import type Database from 'better-sqlite3';

import type { AuditEntry } from '../../lib/admin-client.js';

/** The admin API's wire shape: `detail` parsed JSON, the raw text when not JSON, null when absent. */
export type { AuditEntry };

export interface AuditReader {
  /** The newest `limit` entries with `ts >= cutoff`, oldest first (newest last). */
  since(cutoff: Date, limit: number): AuditEntry[];
}

interface AuditRow {
  seq: number;
  ts: string;
  actor: string;
  action: string;
  target: string | null;
  detail: string | null;
}

/**
 * Read side of the `audit` table. `ts` is ISO-8601 UTC (`toISOString()`), so text comparison
 * is time comparison. "Newest" is recording order (`seq`): a clock stepped back cannot hide a
 * later entry, and the scan walks the primary key backwards and stops after `limit` matches.
 */
export function createAuditReader(db: Database.Database): AuditReader {
  const stmt = db.prepare<[string, number], AuditRow>(
    'SELECT seq, ts, actor, action, target, detail FROM audit WHERE ts >= ? ORDER BY seq DESC LIMIT ?',
  );
  return {
    since(cutoff, limit) {
      if (!Number.isSafeInteger(limit) || limit < 1)
        throw new RangeError(`limit must be a positive integer, got ${limit}`);
      return stmt
        .all(cutoff.toISOString(), limit)
        .reverse()
        .map((r) => ({ ...r, detail: parseDetail(r.detail) }));
    },
  };
}

function parseDetail(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
