import type Database from 'better-sqlite3';
import { isDiskFull } from '../../lib/disk-full.js';
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
  /** Entries kept in memory while the disk is full, oldest dropped past it (default 20 000, a few MB). */
  maxHeld?: number;
  /** While the disk is full, writing is tried again this often (default 1 s). */
  retryMs?: number;
  /** Told when writing stops (`false`, with why) and starts again (`true`): the `audit` health module. */
  onWritable?: (writable: boolean, detail: string) => void;
  now?: () => Date;
}

/**
 * Appends to the `audit` table in group commits: a transaction per request costs more than the
 * request itself (WAL locks and a write each), so entries wait up to `flushMs` and commit
 * together. The decision is enforced when it is made, not when it is recorded; a crash loses at
 * most the last `flushMs` of entries, a clean stop none (`close()` writes what is waiting).
 * A full disk holds the entries in memory (bounded) and tries again until it can write them; the
 * ones dropped past the bound are counted and logged, never silently gone.
 */
export function createAuditWriter(opts: AuditWriterOptions) {
  const now = opts.now ?? (() => new Date());
  const flushMs = opts.flushMs ?? 10;
  const maxBatch = opts.maxBatch ?? 500;
  const maxHeld = opts.maxHeld ?? 20_000;
  const retryMs = opts.retryMs ?? 1000;
  const insert = opts.db.prepare('INSERT INTO audit (ts, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)');
  const insertAll = opts.db.transaction((rows: unknown[][]) => {
    for (const r of rows) insert.run(...r);
  });
  let pending: unknown[][] = [];
  let timer: NodeJS.Timeout | undefined;
  /** Since writing last failed for a full disk: entries dropped past maxHeld. Null while writable. */
  let outage: { lost: number } | null = null;

  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const rows = pending;
    pending = [];
    try {
      insertAll(rows);
    } catch (err) {
      if (!isDiskFull(err)) {
        // The decision itself was already enforced; losing its record is an error, not a crash.
        opts.log.error({ err, lost: rows.length }, 'audit entries could not be written');
        return;
      }
      pending = rows.concat(pending);
      const over = pending.length - maxHeld;
      if (over > 0) pending = pending.slice(over);
      if (!outage) {
        outage = { lost: 0 };
        opts.log.error(
          { held: pending.length, maxHeld },
          'audit entries cannot be written: the disk is full; they are held in memory until it can',
        );
        opts.onWritable?.(false, 'disk full: entries held in memory');
      }
      outage.lost += Math.max(0, over);
      timer = setTimeout(flush, retryMs);
      return;
    }
    if (outage) {
      const { lost } = outage;
      outage = null;
      if (lost > 0)
        opts.log.error({ lost, maxHeld }, 'audit log writable again; entries were lost past the memory bound');
      else opts.log.info({ written: rows.length }, 'audit log writable again; no entry lost');
      opts.onWritable?.(true, lost > 0 ? `writable again; ${lost} entries lost while the disk was full` : 'writable');
    }
  };

  return {
    write(e: AuditEntry): void {
      pending.push([(e.at ?? now()).toISOString(), e.actor, e.action, e.target, JSON.stringify(e.detail)]);
      if (outage) return; // the retry timer writes it
      if (pending.length >= maxBatch) flush();
      else timer ??= setTimeout(flush, flushMs);
    },
    flush,
    close: flush,
  };
}
export type AuditWriter = ReturnType<typeof createAuditWriter>;
