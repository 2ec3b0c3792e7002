import { afterEach, describe, expect, it, vi } from 'vitest';
import { chmodSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { openAuditStore } from '../../../../agent/audit/store.js';
import { createAuditWriter } from '../../../../agent/audit/writer.js';
import { createAuditReader } from '../../../../agent/audit/reader.js';
import { AUDIT_MIGRATIONS } from '../../../../agent/audit/migrations.js';
import { PAGE_CACHE_KIB } from '../../../../agent/store/page-cache.js';
import { StoreError } from '../../../../lib/errors.js';
import { tempDir } from '../../../helpers/fort.js';

const log = pino({ level: 'silent' });

describe('audit store', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates its file 0600 and commits entries in groups: after flushMs, at maxBatch, on close', () => {
    vi.useFakeTimers();
    try {
      dir = tempDir('audit');
      const path = join(dir, 'data', 'audit.db');
      const store = openAuditStore({ path, retentionDays: 90, log });
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(store.db.pragma('cache_size', { simple: true })).toBe(-PAGE_CACHE_KIB.audit);
      const reader = createAuditReader(store.db);
      const writer = createAuditWriter({ db: store.db, log, flushMs: 10, maxBatch: 3 });
      writer.write({ actor: 'alice', action: 'app.read', target: 'sales', detail: { decision: 'allow' } });
      writer.write({ actor: 'bob', action: 'app.read', target: 'hr', detail: { decision: 'deny' } });
      vi.advanceTimersByTime(9);
      expect(reader.since(new Date(0), 10)).toHaveLength(0); // still waiting for company
      vi.advanceTimersByTime(1);
      expect(reader.since(new Date(0), 10).map((e) => [e.actor, e.target, e.detail])).toEqual([
        ['alice', 'sales', { decision: 'allow' }],
        ['bob', 'hr', { decision: 'deny' }],
      ]);
      for (let i = 0; i < 3; i++) writer.write({ actor: `u${i}`, action: 'app.list', target: '*', detail: {} });
      expect(reader.since(new Date(0), 10)).toHaveLength(5); // a full batch does not wait
      writer.write({ actor: 'last', action: 'app.list', target: '*', detail: {} });
      writer.close();
      expect(reader.since(new Date(0), 10).at(-1)?.actor).toBe('last');
      store.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('deletes entries past the retention when opened', () => {
    dir = tempDir('audit');
    const path = join(dir, 'audit.db');
    let clock = new Date('2026-01-01T00:00:00Z');
    const first = openAuditStore({ path, retentionDays: 30, log, now: () => clock });
    const insert = first.db.prepare("INSERT INTO audit (ts, actor, action) VALUES (?, 'x', 'app.read')");
    for (const day of ['2025-11-01', '2025-12-15', '2025-12-31']) insert.run(`${day}T12:00:00.000Z`);
    first.close();
    clock = new Date('2026-01-20T00:00:00Z'); // cutoff 2025-12-21
    const reopened = openAuditStore({ path, retentionDays: 30, log, now: () => clock });
    expect(reopened.db.prepare('SELECT ts FROM audit ORDER BY seq').pluck().all()).toEqual([
      '2025-12-31T12:00:00.000Z',
    ]);
    reopened.close();
  });

  const versions = (db: Database.Database) =>
    db.prepare('SELECT version, name FROM schema_version ORDER BY version').all();

  it('adopts an audit.db from before its migrations (no schema_version), rows kept', () => {
    dir = tempDir('audit');
    const path = join(dir, 'audit.db');
    // What openAuditStore created before audit.db had numbered migrations.
    const old = new Database(path);
    old.exec(`CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, actor TEXT NOT NULL,
      action TEXT NOT NULL, target TEXT, detail TEXT); CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts);`);
    old
      .prepare(
        "INSERT INTO audit (ts, actor, action, target, detail) VALUES (?, ?, 'app.read', 'sales', '{\"decision\":\"allow\"}')",
      )
      .run('2026-01-10T00:00:00.000Z', 'alice');
    old
      .prepare("INSERT INTO audit (ts, actor, action) VALUES (?, ?, 'app.list')")
      .run('2026-01-11T00:00:00.000Z', 'bob');
    old.close();
    chmodSync(path, 0o600);
    const store = openAuditStore({ path, retentionDays: 30, log, now: () => new Date('2026-01-12T00:00:00Z') });
    expect(versions(store.db)).toEqual([{ version: 1, name: 'audit' }]);
    expect(
      createAuditReader(store.db)
        .since(new Date(0), 10)
        .map((e) => [e.seq, e.actor, e.target, e.detail]),
    ).toEqual([
      [1, 'alice', 'sales', { decision: 'allow' }],
      [2, 'bob', null, null],
    ]);
    // New entries follow the old ones.
    store.db
      .prepare("INSERT INTO audit (ts, actor, action) VALUES ('2026-01-12T00:00:00.000Z', 'carol', 'app.list')")
      .run();
    expect(store.db.prepare("SELECT seq FROM audit WHERE actor = 'carol'").pluck().get()).toBe(3);
    store.close();
  });

  it('records its schema version on a new file, and applies nothing twice', () => {
    dir = tempDir('audit');
    const path = join(dir, 'audit.db');
    openAuditStore({ path, retentionDays: 30, log }).close();
    const store = openAuditStore({ path, retentionDays: 30, log });
    expect(versions(store.db)).toEqual(AUDIT_MIGRATIONS.map(({ version, name }) => ({ version, name })));
    store.close();
  });

  it('refuses an audit.db written by a newer schema, unchanged', () => {
    dir = tempDir('audit');
    const path = join(dir, 'audit.db');
    const first = openAuditStore({ path, retentionDays: 30, log });
    first.db
      .prepare("INSERT INTO audit (ts, actor, action) VALUES ('2026-01-01T00:00:00.000Z', 'alice', 'app.read')")
      .run();
    first.db.exec(
      "CREATE TABLE future (x); INSERT INTO schema_version (version, name, applied_at) VALUES (7, 'future', '2026-01-01T00:00:00.000Z')",
    );
    first.close();
    const latest = AUDIT_MIGRATIONS.at(-1)!.version;
    expect(() => openAuditStore({ path, retentionDays: 30, log })).toThrow(
      expect.objectContaining({
        code: 'FORT_ERR_STORE_SCHEMA',
        message: expect.stringContaining(`audit.db has schema version 7, newer than this agent supports (${latest})`),
      }),
    );
    const after = new Database(path, { readonly: true });
    expect(after.prepare('SELECT actor FROM audit').pluck().all()).toEqual(['alice']);
    expect(after.prepare('SELECT MAX(version) FROM schema_version').pluck().get()).toBe(7);
    after.close();
  });

  it('refuses a file readable by others', () => {
    dir = tempDir('audit');
    const path = join(dir, 'audit.db');
    openAuditStore({ path, retentionDays: 30, log }).close();
    chmodSync(path, 0o644);
    expect(() => openAuditStore({ path, retentionDays: 30, log })).toThrow(StoreError);
  });

  it('keeps the entries within audit_max_mib: the oldest deleted at open and every minute, the newest kept', () => {
    dir = tempDir('audit');
    const path = join(dir, 'audit.db');
    const MiB = 1024 * 1024;
    const detail = JSON.stringify({ decision: 'deny', note: 'x'.repeat(500) });
    const fill = (db: Database.Database, n: number) => {
      const insert = db.prepare('INSERT INTO audit (ts, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)');
      db.transaction(() => {
        for (let i = 0; i < n; i++) insert.run(new Date().toISOString(), 'anonymous', 'auth', `GET /${i}`, detail);
      })();
    };
    const big = openAuditStore({ path, retentionDays: 30, maxBytes: 1024 * MiB, log });
    fill(big.db, 6000); // ~3.5 MiB
    expect(big.usedBytes()).toBeGreaterThan(3 * MiB);
    big.close();
    const reader = new Database(path, { readonly: true });
    const newest = reader.prepare('SELECT max(seq) FROM audit').pluck().get();
    reader.close();

    vi.useFakeTimers();
    try {
      const store = openAuditStore({ path, retentionDays: 30, maxBytes: MiB, log });
      expect(store.usedBytes()).toBeLessThanOrEqual(MiB);
      const seqs = store.db.prepare('SELECT min(seq) AS first, max(seq) AS last, count(*) AS n FROM audit').get() as {
        first: number;
        last: number;
        n: number;
      };
      expect(seqs.last).toBe(newest); // the newest kept, the oldest gone
      expect(seqs.first).toBeGreaterThan(1);
      expect(seqs.n).toBe(seqs.last - seqs.first + 1);
      // Written past the cap again: the minute's check brings it back under.
      fill(store.db, 3000);
      expect(store.usedBytes()).toBeGreaterThan(MiB);
      vi.advanceTimersByTime(60_000);
      expect(store.usedBytes()).toBeLessThanOrEqual(MiB);
      store.close();
    } finally {
      vi.useRealTimers();
    }
    // The file itself stays near the cap (freed pages are reused, not appended).
    const grown = statSync(path).size;
    const again = openAuditStore({ path, retentionDays: 30, maxBytes: MiB, log });
    fill(again.db, 1000);
    again.cap();
    again.close();
    expect(statSync(path).size).toBeLessThanOrEqual(grown);
  });
});
