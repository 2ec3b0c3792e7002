import type { Migration } from '../store/migrations.js';

/**
 * The audit table's columns as first released. The main store's migration 1 created the same
 * table (migration 3 dropped it when the log moved here), so both texts come from this one.
 */
export const AUDIT_COLUMNS_V1 = `(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT
      )`;

/** audit.db's forward-only schema, applied by the main store's runner. Never edit a released entry: add one. */
export const AUDIT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'audit',
    // IF NOT EXISTS: audit.db files from before these migrations have exactly this schema and
    // no schema_version; they are adopted as version 1, rows kept.
    sql: `
      CREATE TABLE IF NOT EXISTS audit ${AUDIT_COLUMNS_V1};
      CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts);
    `,
  },
];
