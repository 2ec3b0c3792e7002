import type Database from 'better-sqlite3';
import type { Logger } from '../../lib/logger.js';

export interface AuditEntry {
  actor: string;
  action: string;
  target: string | null;
  detail: Record<string, unknown>;
  /** When it happened, if not now (a tally written at the end of its minute). */
  at?: Date;
}

export interface AuditWriterOptions {
  db: Database.Database;
  log: Logger;
  /** Entries are committed together at most this long after the first of them (default 10 ms). */
  flushMs?: number;
  /** ... or as soon as this many are waiting (default 500). */
  maxBatch?: number;
  now?: () => Date;
}

/**
 * Appends to the `audit` table in group commits: a transaction per request costs more than the
 * request itself (WAL locks and a write each), so entries wait up to `flushMs` and commit
 * together. The decision is enforced when it is made, not when it is recorded; a crash loses at
 * most the last `flushMs` of entries, a clean stop none (`close()` writes what is waiting).
 */
export function createAuditWriter(opts: AuditWriterOptions) {
  const now = opts.now ?? (() => new Date());
  const flushMs = opts.flushMs ?? 10;
  const maxBatch = opts.maxBatch ?? 500;
  const insert = opts.db.prepare('INSERT INTO audit (ts, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)');
  const insertAll = opts.db.transaction((rows: unknown[][]) => {
    for (const r of rows) insert.run(...r);
  });
  let pending: unknown[][] = [];
  let timer: NodeJS.Timeout | undefined;

  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const rows = pending;
    pending = [];
    try {
      insertAll(rows);
    } catch (err) {
      // The decision itself was already enforced; losing its record is an error, not a crash.
      opts.log.error({ err, lost: rows.length }, 'audit entries could not be written');
    }
  };

  return {
    write(e: AuditEntry): void {
      pending.push([(e.at ?? now()).toISOString(), e.actor, e.action, e.target, JSON.stringify(e.detail)]);
      if (pending.length >= maxBatch) flush();
      else timer ??= setTimeout(flush, flushMs);
    },
    flush,
    close: flush,
  };
}
export type AuditWriter = ReturnType<typeof createAuditWriter>;
