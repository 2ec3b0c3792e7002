import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { openAuditStore } from '../../../../agent/audit/store.js';
import { createAuditWriter } from '../../../../agent/audit/writer.js';
import { createAuditReader } from '../../../../agent/audit/reader.js';
import { StoreError } from '../../../../lib/errors.js';
import { tempDir } from '../../../helpers/fort.js';

const log = pino({ level: 'silent' });

describe('audit store', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates its file 0600, writes a turn of entries together and reads them back', async () => {
    dir = tempDir('audit');
    const path = join(dir, 'data', 'audit.db');
    const store = openAuditStore({ path, retentionDays: 90, log });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const writer = createAuditWriter({ db: store.db, log });
    writer.write({ actor: 'alice', action: 'app.read', target: 'sales', detail: { decision: 'allow' } });
    writer.write({ actor: 'bob', action: 'app.read', target: 'hr', detail: { decision: 'deny' } });
    expect(createAuditReader(store.db).since(new Date(0), 10)).toHaveLength(0); // not before the turn ends
    await new Promise((r) => setImmediate(r));
    const entries = createAuditReader(store.db).since(new Date(0), 10);
    expect(entries.map((e) => [e.actor, e.target, e.detail])).toEqual([['alice', 'sales', { decision: 'allow' }], ['bob', 'hr', { decision: 'deny' }]]);
    writer.close();
    store.close();
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
    expect(reopened.db.prepare('SELECT ts FROM audit ORDER BY seq').pluck().all()).toEqual(['2025-12-31T12:00:00.000Z']);
    reopened.close();
  });

  it('refuses a file readable by others', () => {
    dir = tempDir('audit');
    const path = join(dir, 'audit.db');
    openAuditStore({ path, retentionDays: 30, log }).close();
    chmodSync(path, 0o644);
    expect(() => openAuditStore({ path, retentionDays: 30, log })).toThrow(StoreError);
  });
});
