import Database from 'better-sqlite3';
import { closeSync, constants, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { StoreError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { MIGRATIONS, type Migration } from './migrations.js';
import { limitPageCache, PAGE_CACHE_KIB } from './page-cache.js';

export interface Store {
  db: Database.Database;
  schemaVersion: number;
  close(): void;
}

export interface OpenStoreOptions {
  path: string;
  log: Logger;
  migrations?: readonly Migration[];
  now?: () => Date;
}

/** Open (creating 0600 if missing) and migrate the agent database. */
export function openStore(opts: OpenStoreOptions): Store {
  const migrations = opts.migrations ?? MIGRATIONS;
  const now = opts.now ?? (() => new Date());
  ensurePrivateFile(opts.path);
  let db: Database.Database;
  try {
    db = new Database(opts.path);
  } catch (err) {
    throw new StoreError(`cannot open database ${opts.path}: ${(err as Error).message}`, 'FORT_ERR_STORE', err);
  }
  try {
    db.pragma('journal_mode = WAL');
    // FULL: a committed inbox row or state change survives a power cut, which exactly-once relies on.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    limitPageCache(db, PAGE_CACHE_KIB.store);
    const schemaVersion = migrate(db, migrations, opts.path, now);
    opts.log.info({ path: opts.path, schemaVersion }, 'store open');
    return { db, schemaVersion, close: () => db.close() };
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Creates `path` 0600 (and its directory 0700) if missing; refuses an existing file readable by group or others. */
export function ensurePrivateFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (!existsSync(path)) {
    closeSync(openSync(path, constants.O_CREAT | constants.O_WRONLY | constants.O_EXCL, 0o600));
    return;
  }
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new StoreError(
      `database ${path} has mode ${mode.toString(8).padStart(4, '0')}; customer data must not be readable by group or others (chmod 600 ${path})`,
    );
  }
}

/**
 * Applies the migrations newer than the file's schema_version, each in its own transaction;
 * refuses (untouched) a file from a newer release. Returns the latest known version.
 */
export function migrate(
  db: Database.Database,
  migrations: readonly Migration[],
  path: string,
  now: () => Date,
): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
  const current = row.v ?? 0;
  const latest = migrations.reduce((m, x) => Math.max(m, x.version), 0);
  if (current > latest) {
    throw new StoreError(
      `database ${path} has schema version ${current}, newer than this agent supports (${latest}); ` +
        'it was written by a newer fort-agent release: run that release (or restore a backup taken before the upgrade)',
      'FORT_ERR_STORE_SCHEMA',
    );
  }
  const record = db.prepare('INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)');
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.version, m.name, now().toISOString());
    })();
  }
  return latest;
}
