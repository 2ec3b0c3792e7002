import { AUDIT_COLUMNS_V1 } from '../audit/migrations.js';

/**
 * Forward-only schema migrations. Never edit a released entry: add a new one. Later
 * issues fill these tables; the columns here are the ones every later feature relies on.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
      CREATE TABLE inbox (
        id TEXT PRIMARY KEY,                -- event envelope id: duplicates are acked and ignored
        type TEXT NOT NULL,
        received_at TEXT NOT NULL,
        payload TEXT NOT NULL
      );
      CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, -- publish order
        topic TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE apps (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        space TEXT NOT NULL,
        definition TEXT NOT NULL,
        current_version_id INTEGER REFERENCES app_versions(id) DEFERRABLE INITIALLY DEFERRED,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE app_versions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        file TEXT NOT NULL,
        row_count INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX app_versions_app ON app_versions(app_id, id);
      CREATE TABLE reloads (
        id TEXT PRIMARY KEY,
        app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        state TEXT NOT NULL CHECK (state IN ('queued','running','succeeded','failed','cancelled','interrupted')),
        source TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        requested_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        version_id INTEGER REFERENCES app_versions(id),
        error_code TEXT,
        error_message TEXT
      );
      CREATE INDEX reloads_state ON reloads(state, requested_at);
      CREATE TABLE audit ${AUDIT_COLUMNS_V1};
    `,
  },
  {
    version: 2,
    name: 'events',
    sql: `
      CREATE TABLE dead_letters (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at TEXT NOT NULL,
        topic TEXT NOT NULL,
        reason_code TEXT NOT NULL,          -- too_large, bad_json, bad_envelope, unsupported_version, wrong_fort, unknown_type, handler_failed
        reason TEXT NOT NULL,               -- names the field or error, never the payload
        event_id TEXT,                      -- when the envelope got far enough to have one
        type TEXT,
        payload BLOB NOT NULL,              -- raw bytes, at most 128 KiB: a truncated copy when size is larger
        size INTEGER NOT NULL               -- original payload size in bytes
      );
      CREATE INDEX dead_letters_received ON dead_letters(received_at);
      -- Failed publishes of a row: a message that keeps failing shows up in health instead of hiding.
      ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
      -- Pruning the dedupe window by age.
      CREATE INDEX inbox_received ON inbox(received_at);
    `,
  },
  {
    version: 3,
    name: 'audit moved to audit.db',
    // Its own file, so audit appends (synchronous=NORMAL) neither fsync nor invalidate this one's cache.
    sql: 'DROP TABLE audit;',
  },
  {
    version: 4,
    name: 'reload queue',
    sql: `
      -- Requests folded into a queued reload (coalescing), and a cancel asked for while it runs.
      ALTER TABLE reloads ADD COLUMN requests INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE reloads ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE reloads ADD COLUMN rows INTEGER;
      -- At most one queued reload per app: every further request joins it.
      CREATE UNIQUE INDEX reloads_one_queued ON reloads(app_id) WHERE state = 'queued';
      CREATE INDEX reloads_app ON reloads(app_id, requested_at);
    `,
  },
  {
    version: 5,
    name: 'app versions kept by the engine',
    sql: `
      -- A version the engine loaded and serves: its id there (file is then ''), and its tables
      -- ([{name, rows}] as JSON) so listing them needs no engine call.
      ALTER TABLE app_versions ADD COLUMN engine_version TEXT;
      ALTER TABLE app_versions ADD COLUMN tables_json TEXT;
    `,
  },
];
