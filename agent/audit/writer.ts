import type Database from 'better-sqlite3';
import type { Logger } from '../../lib/logger.js';

export interface AuditEntry {
  actor: string;
  action: string;
  target: string | null;
  detail: Record<string, unknown>;
}

/**
 * Appends to the `audit` table. Entries of one event-loop turn commit together in one
 * transaction (one write per turn rather than per request); the agent gives it its own
 * synchronous=NORMAL connection (see openRecordsConnection). Whatever is buffered is written on close.
 */
export function createAuditWriter(opts: { db: Database.Database; log: Logger; now?: () => Date }) {
  const now = opts.now ?? (() => new Date());
  const insert = opts.db.prepare('INSERT INTO audit (ts, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)');
  const insertAll = opts.db.transaction((rows: unknown[][]) => {
    for (const r of rows) insert.run(...r);
  });
  let pending: unknown[][] = [];
  let scheduled: NodeJS.Immediate | undefined;

  const flush = () => {
    scheduled = undefined;
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
      pending.push([now().toISOString(), e.actor, e.action, e.target, JSON.stringify(e.detail)]);
      scheduled ??= setImmediate(flush);
    },
    flush,
    close(): void {
      if (scheduled) clearImmediate(scheduled);
      flush();
    },
  };
}
export type AuditWriter = ReturnType<typeof createAuditWriter>;
