import { describe, expect, it } from 'vitest';
import { chmodSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { openStore } from '../../../agent/store/database.js';
import { MIGRATIONS } from '../../../agent/store/migrations.js';
import { PAGE_CACHE_KIB } from '../../../agent/store/page-cache.js';
import { StoreError } from '../../../lib/errors.js';
import { tempDir } from '../../helpers/fort.js';

const log = pino({ level: 'silent' });

describe('agent store', () => {
  it('migrates an empty database to the latest schema with every table', () => {
    const path = join(tempDir('store'), 'agent.db');
    const store = openStore({ path, log });
    const tables = (
      store.db.prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").all() as { name: string }[]
    ).map((r) => r.name);
    expect(tables).toEqual(
      expect.arrayContaining(['inbox', 'outbox', 'apps', 'app_versions', 'reloads', 'dead_letters', 'schema_version']),
    );
    expect(tables).not.toContain('audit'); // lives in audit.db (agent/audit/store.ts)
    expect(store.schemaVersion).toBe(MIGRATIONS.at(-1)!.version);
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('foreign_keys', { simple: true })).toBe(1);
    // Not better-sqlite3's 16 MB default, which a growing inbox filled page by page (the soak's RSS growth).
    expect(store.db.pragma('cache_size', { simple: true })).toBe(-PAGE_CACHE_KIB.store);
    store.close();
  });

  it('creates the file 0600 and refuses one readable by others', () => {
    const path = join(tempDir('store'), 'sub', 'agent.db');
    openStore({ path, log }).close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    chmodSync(path, 0o644);
    expect(() => openStore({ path, log })).toThrow(
      /mode 0644; customer data must not be readable by group or others \(chmod 600 /,
    );
  });

  it('keeps data across reopen and does not re-run migrations', () => {
    const path = join(tempDir('store'), 'agent.db');
    const first = openStore({ path, log });
    first.db.prepare("INSERT INTO inbox (id, type, received_at, payload) VALUES ('e1', 'ping', 'now', '{}')").run();
    first.close();
    const second = openStore({ path, log });
    expect(second.db.prepare('SELECT id FROM inbox').all()).toEqual([{ id: 'e1' }]);
    expect(second.db.prepare('SELECT COUNT(*) AS n FROM schema_version').get()).toEqual({ n: MIGRATIONS.length });
    second.close();
  });

  it('applies a new migration on top of existing data', () => {
    const path = join(tempDir('store'), 'agent.db');
    openStore({ path, log }).close();
    const next = [...MIGRATIONS, { version: 99, name: 'add-note', sql: 'ALTER TABLE apps ADD COLUMN note TEXT' }];
    const store = openStore({ path, log, migrations: next });
    expect(store.schemaVersion).toBe(99);
    expect((store.db.prepare('PRAGMA table_info(apps)').all() as { name: string }[]).map((c) => c.name)).toContain(
      'note',
    );
    store.close();
  });

  it('refuses a database written by a newer schema, unchanged', () => {
    const path = join(tempDir('store'), 'agent.db');
    const newer = [...MIGRATIONS, { version: 42, name: 'future', sql: 'CREATE TABLE future (x)' }];
    openStore({ path, log, migrations: newer }).close();
    let error: unknown;
    try {
      openStore({ path, log });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('FORT_ERR_STORE_SCHEMA');
    expect((error as Error).message).toContain(
      `has schema version 42, newer than this agent supports (${MIGRATIONS.at(-1)!.version})`,
    );
    // Still readable by the newer release: nothing was dropped.
    const again = openStore({ path, log, migrations: newer });
    expect(again.db.prepare("SELECT name FROM sqlite_master WHERE name='future'").get()).toEqual({ name: 'future' });
    again.close();
  });

  it('enforces foreign keys', () => {
    const path = join(tempDir('store'), 'agent.db');
    const store = openStore({ path, log });
    expect(() =>
      store.db
        .prepare(
          "INSERT INTO reloads (id, app_id, state, source, requested_at) VALUES ('r1', 'no-such-app', 'queued', 'test', 'now')",
        )
        .run(),
    ).toThrow(/FOREIGN KEY/);
    store.close();
    expect(existsSync(`${path}-wal`) ? statSync(`${path}-wal`).mode & 0o077 : 0).toBe(0);
  });
});
