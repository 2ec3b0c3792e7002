import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { createAppCatalog } from '../../../../agent/apps/catalog.js';
import { openStore, type Store } from '../../../../agent/store/database.js';
import { StoreError } from '../../../../lib/errors.js';
import { seedApp } from '../../../helpers/apps.js';
import { tempDir } from '../../../helpers/fort.js';

const log = pino({ level: 'silent' });

describe('app catalog', () => {
  let dir: string;
  let appsDir: string;
  let store: Store;

  beforeEach(() => {
    dir = tempDir('catalog');
    appsDir = join(dir, 'apps');
    store = openStore({ path: join(dir, 'agent.db'), log });
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists apps by name with their current version, and gets one', () => {
    const now = new Date('2024-05-01T10:00:00.000Z');
    seedApp(store.db, appsDir, {
      id: 'sales',
      name: 'Sales',
      space: 'finance',
      now,
      tables: { orders: { columns: ['id', 'total'], rows: [[1, 9.5]] } },
    });
    seedApp(store.db, appsDir, { id: 'empty', name: 'Budget', space: 'finance', now });
    seedApp(store.db, appsDir, { id: 'hr', name: 'People', space: 'hr', now, tables: {} });
    const catalog = createAppCatalog({ db: store.db, appsDir });

    const list = catalog.list();
    expect(list.map((a) => a.name)).toEqual(['Budget', 'People', 'Sales']);
    expect(list[0]).toEqual({
      id: 'empty',
      name: 'Budget',
      space: 'finance',
      versionId: null,
      updatedAt: now.toISOString(),
    });
    expect(list[2]).toEqual({
      id: 'sales',
      name: 'Sales',
      space: 'finance',
      versionId: expect.any(Number),
      updatedAt: now.toISOString(),
    });
    expect(catalog.get('sales')).toEqual(list[2]);
    expect(catalog.get('nope')).toBeUndefined();
  });

  it("sees its own connection's changes at once and another connection's within the check period", () => {
    let clock = 0;
    const catalog = createAppCatalog({ db: store.db, appsDir, otherWritersCheckMs: 1000, now: () => clock });
    expect(catalog.list()).toEqual([]);
    seedApp(store.db, appsDir, {
      id: 'sales',
      name: 'Sales',
      space: 's',
      tables: { t: { columns: ['a'], rows: [[1]] } },
    });
    const first = catalog.currentVersionFile('sales');
    expect(first).toBeDefined();
    // A second version switched in by another connection (another process, in production).
    const other = openStore({ path: join(dir, 'agent.db'), log });
    const second = seedApp(other.db, appsDir, {
      id: 'sales',
      name: 'Sales v2',
      space: 's',
      tables: { t: { columns: ['a'], rows: [[2]] } },
    });
    other.db.prepare("UPDATE apps SET name = 'Renamed' WHERE id = 'sales'").run();
    other.close();
    expect(catalog.get('sales')?.name).toBe('Sales'); // not asked again yet
    clock += 1000;
    expect(catalog.get('sales')?.name).toBe('Renamed');
    expect(catalog.currentVersionFile('sales')).toBe(second.file);
    expect(second.file).not.toBe(first);
    store.db.prepare("DELETE FROM apps WHERE id = 'sales'").run();
    expect(catalog.get('sales')).toBeUndefined();
  });

  it('resolves the current version file under appsDir; none for an empty or unknown app', () => {
    const seeded = seedApp(store.db, appsDir, {
      id: 'sales',
      name: 'Sales',
      space: 's',
      tables: { t: { columns: ['a'], rows: [[1], [2]] } },
    });
    seedApp(store.db, appsDir, { id: 'empty', name: 'Empty', space: 's' });
    const catalog = createAppCatalog({ db: store.db, appsDir });

    const file = catalog.currentVersionFile('sales');
    expect(file).toBe(join(appsDir, 'sales', `${seeded.versionId}.sqlite`));
    expect(file).toBe(seeded.file);
    expect(existsSync(file!)).toBe(true);
    expect(catalog.currentVersionFile('empty')).toBeUndefined();
    expect(catalog.currentVersionFile('nope')).toBeUndefined();
  });

  it('records the version as a reload would: relative path, row count, sha256, no temp files left', () => {
    seedApp(store.db, appsDir, {
      id: 'sales',
      name: 'Sales',
      space: 's',
      tables: { a: { columns: ['x'], rows: [[1], [2]] }, b: { columns: ['y', 'z'], rows: [[1, 'one']] } },
    });
    const row = store.db
      .prepare('SELECT id, file, row_count AS rowCount, content_hash AS hash FROM app_versions')
      .get() as { id: number; file: string; rowCount: number; hash: string };
    expect(row.file).toBe(`sales/${row.id}.sqlite`);
    expect(row.rowCount).toBe(3);
    expect(row.hash).toBe(
      createHash('sha256')
        .update(readFileSync(join(appsDir, row.file)))
        .digest('hex'),
    );
    expect(readdirSync(join(appsDir, 'sales'))).toEqual([`${row.id}.sqlite`]);
  });

  it('a second seed of the same app becomes its new current version', () => {
    const first = seedApp(store.db, appsDir, {
      id: 'sales',
      name: 'Sales',
      space: 's',
      tables: { t: { columns: ['a'], rows: [[1]] } },
    });
    const second = seedApp(store.db, appsDir, {
      id: 'sales',
      name: 'Sales 2',
      space: 's',
      tables: { t: { columns: ['a'], rows: [[1], [2]] } },
    });
    const catalog = createAppCatalog({ db: store.db, appsDir });
    expect(second.versionId).toBeGreaterThan(first.versionId!);
    expect(catalog.get('sales')).toMatchObject({ name: 'Sales 2', versionId: second.versionId });
    expect(catalog.currentVersionFile('sales')).toBe(second.file);
  });

  it('sees apps added after it was created (statements are prepared once, not results)', () => {
    const catalog = createAppCatalog({ db: store.db, appsDir });
    expect(catalog.list()).toEqual([]);
    seedApp(store.db, appsDir, { id: 'late', name: 'Late', space: 's' });
    expect(catalog.list().map((a) => a.id)).toEqual(['late']);
  });

  it('refuses a version path that leaves the apps directory', () => {
    seedApp(store.db, appsDir, { id: 'sales', name: 'Sales', space: 's', tables: { t: { columns: ['a'], rows: [] } } });
    const catalog = createAppCatalog({ db: store.db, appsDir });
    for (const bad of ['../agent.db', '/etc/passwd', 'sales/../../x.sqlite']) {
      store.db.prepare('UPDATE app_versions SET file = ?').run(bad);
      expect(() => catalog.currentVersionFile('sales')).toThrow(StoreError);
    }
  });

  it('refuses an app id that is not a safe directory name', () => {
    expect(() => seedApp(store.db, appsDir, { id: '../x', name: 'X', space: 's', tables: {} })).toThrow(
      /not usable as a directory name/,
    );
    expect(store.db.prepare('SELECT COUNT(*) FROM apps').pluck().get()).toBe(0);
  });
});
