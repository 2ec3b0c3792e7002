import type Database from 'better-sqlite3';

/**
 * SQLite's page cache per connection, in KiB. better-sqlite3 builds SQLite with a 16 MB default
 * (`SQLITE_DEFAULT_CACHE_SIZE=-16000`; SQLite's own is 2 MB), and a database that keeps growing
 * (the inbox's dedupe ids, the audit trail) fills it page by page: under 50 events/s the agent's
 * RSS grew ~4.5 MiB a minute, all of it SQLite pages (heaptrack), toward 16 MB per connection
 * and per open app version (issue 21, the soak's RSS growth). The OS keeps the files' pages
 * cached anyway; SQLite's own cache only saves a copy. For the connections that stay open; a
 * reload's source is read once and closed.
 */
export const PAGE_CACHE_KIB = {
  /** agent.db: inbox, outbox, apps, reloads. */
  store: 2048,
  audit: 1024,
  /** Each open app version file (the version reader keeps up to 16). */
  appVersion: 2048,
} as const;

export function limitPageCache(db: Database.Database, kib: number): void {
  db.pragma(`cache_size = -${kib}`);
}
