import Database from 'better-sqlite3';
import { StoreError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { ensurePrivateFile, migrate } from '../store/database.js';
import { AUDIT_MIGRATIONS } from './migrations.js';

export interface AuditStoreOptions {
  path: string;
  retentionDays: number;
  log: Logger;
  now?: () => Date;
}

/**
 * The audit trail's own SQLite file. Every client API request appends to it, so it is kept
 * apart from the agent's store: WAL with synchronous=NORMAL survives a crash or kill -9 of the
 * agent (a power cut may lose the last commits), a commit is not an fsync, and its writes do
 * not invalidate the page cache of the connection that serves the inbox and the catalog.
 * Entries older than the retention are deleted at open and then hourly.
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
  expire();
  const timer = setInterval(expire, 3_600_000).unref();
  return {
    db,
    expire,
    close() {
      clearInterval(timer);
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
    migrate(db, AUDIT_MIGRATIONS, path, now);
    return db;
  } catch (err) {
    db?.close();
    // A newer schema keeps its own code (FORT_ERR_STORE_SCHEMA) and message.
    if (err instanceof StoreError) throw err;
    throw new StoreError(`cannot open audit database ${path}: ${(err as Error).message}`, 'FORT_ERR_STORE', err);
  }
}
