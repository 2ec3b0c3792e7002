import Database from 'better-sqlite3';
import { StoreError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { ensurePrivateFile, migrate } from '../store/database.js';
import { AUDIT_MIGRATIONS } from './migrations.js';
import { limitPageCache, PAGE_CACHE_KIB } from '../store/page-cache.js';

export interface AuditStoreOptions {
  path: string;
  retentionDays: number;
  /** Bytes the entries may use; past it the oldest tenth goes, until under. Default 256 MiB. */
  maxBytes?: number;
  log: Logger;
  now?: () => Date;
}

/**
 * The audit trail's own SQLite file. Every client API request appends to it, so it is kept
 * apart from the agent's store: WAL with synchronous=NORMAL survives a crash or kill -9 of the
 * agent (a power cut may lose the last commits), a commit is not an fsync, and its writes do
 * not invalidate the page cache of the connection that serves the inbox and the catalog.
 * Entries older than the retention are deleted at open and then hourly; past `maxBytes` the
 * oldest are deleted, checked at open and every minute (so the file holds at most the cap plus a
 * minute of writes; freed pages are reused, the file does not grow past it).
 */
export function openAuditStore(opts: AuditStoreOptions) {
  const now = opts.now ?? (() => new Date());
  ensurePrivateFile(opts.path);
  const db = openAuditDatabase(opts.path, now);
  const prune = db.prepare('DELETE FROM audit WHERE ts < ?');
  const expire = () => {
    try {
      const cutoff = new Date(now().getTime() - opts.retentionDays * 86_400_000).toISOString();
      const { changes } = prune.run(cutoff);
      if (changes > 0) opts.log.info({ deleted: changes, before: cutoff }, 'audit entries past retention deleted');
    } catch (err) {
      opts.log.error({ err }, 'audit retention could not run');
    }
  };
  const maxBytes = opts.maxBytes ?? 256 * 1024 * 1024;
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const pages = db.prepare<[], number>('PRAGMA page_count').pluck();
  const free = db.prepare<[], number>('PRAGMA freelist_count').pluck();
  const entries = db.prepare<[], number>('SELECT count(*) FROM audit').pluck();
  const nth = db.prepare<[number], number>('SELECT seq FROM audit ORDER BY seq LIMIT 1 OFFSET ?').pluck();
  const dropThrough = db.prepare('DELETE FROM audit WHERE seq <= ?');
  const used = () => (pages.get()! - free.get()!) * pageSize;
  const cap = () => {
    try {
      let deleted = 0;
      // Counted only when over the cap: a count(*) of a full trail every minute would cost for nothing.
      while (used() > maxBytes) {
        const n = entries.get()!;
        if (n === 0) break;
        deleted += dropThrough.run(nth.get(Math.ceil(n / 10) - 1)!).changes;
      }
      if (deleted > 0)
        opts.log.warn(
          { deleted, maxBytes, usedBytes: used() },
          'audit trail at its size cap (store.audit_max_mib): oldest entries deleted',
        );
    } catch (err) {
      opts.log.error({ err }, 'audit size cap could not run');
    }
  };
  expire();
  cap();
  const timers = [setInterval(expire, 3_600_000).unref(), setInterval(cap, 60_000).unref()];
  return {
    db,
    expire,
    cap,
    /** Bytes the entries use now (pages in use times the page size). */
    usedBytes: used,
    close() {
      for (const t of timers) clearInterval(t);
      db.close();
    },
  };
}
export type AuditStore = ReturnType<typeof openAuditStore>;

function openAuditDatabase(path: string, now: () => Date): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    limitPageCache(db, PAGE_CACHE_KIB.audit);
    migrate(db, AUDIT_MIGRATIONS, path, now);
    return db;
  } catch (err) {
    db?.close();
    // A newer schema keeps its own code (FORT_ERR_STORE_SCHEMA) and message.
    if (err instanceof StoreError) throw err;
    throw new StoreError(`cannot open audit database ${path}: ${(err as Error).message}`, 'FORT_ERR_STORE', err);
  }
}
