import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { csvTable } from '../../../engine/load/csv-table.js';
import { sqliteTable } from '../../../engine/load/sqlite-table.js';
import { writeVersion } from '../../../engine/load/version-file.js';
import { createVersionStore } from '../../../engine/versions.js';
import { fortFailure } from '../../helpers/assertions.js';
import { tempDir } from '../../helpers/fort.js';

/** The versions the engine serves: described table by table, deleted at once or after the queries on them. */

async function setup() {
  const dir = tempDir('engine-versions');
  const versions = createVersionStore({
    dir: join(dir, 'data'),
    memoryLimit: '128MB',
    threads: 1,
    maxOpen: 4,
    log: pino({ level: 'silent' }),
  });
  const csv = join(dir, 'sales.csv');
  writeFileSync(csv, 'region,amount,day\nNorth,1.5,2024-01-01\nSouth,2,2024-01-02\nEast,,\n');
  const crm = join(dir, 'crm.sqlite');
  execFileSync('sqlite3', [
    crm,
    "CREATE TABLE customers(id INTEGER, name TEXT, vip BOOLEAN); INSERT INTO customers VALUES (1, 'Ärzte AG', 1), (2, 'Bolt', 0);",
  ]);
  const appDir = versions.appDir('app');
  mkdirSync(appDir, { recursive: true });
  const load = (id: string) =>
    writeVersion({
      dir: appDir,
      id,
      tables: [
        sqliteTable({ name: 'customers', database: crm, query: 'SELECT * FROM customers' }),
        csvTable({
          name: 'sales',
          file: csv,
          delimiter: ',',
          quote: '"',
          header: true,
          columns: [
            { name: 'region', type: 'string' },
            { name: 'amount', type: 'number' },
            { name: 'day', type: 'date' },
          ],
        }),
      ],
      limits: { memoryLimit: '128MB', threads: 1, maxRows: 1000 },
    });
  const count = (version: string) =>
    versions.use('app', version, 'sales', async (t) =>
      Number((await t.conn.runAndReadAll('SELECT count(*) FROM sales')).getRows()[0]![0]),
    );
  return { versions, load, count, file: (v: string) => versions.file('app', v) };
}

describe('the engine version store', () => {
  it('describes the tables of a version in load order: rows, fields with DuckDB type and kind', async () => {
    const s = await setup();
    await s.load('v1');
    expect(await s.versions.tables('app', 'v1')).toEqual([
      {
        name: 'customers',
        rows: 2,
        fields: [
          { name: 'id', type: 'BIGINT', kind: 'integer' },
          { name: 'name', type: 'VARCHAR', kind: 'text' },
          { name: 'vip', type: 'BOOLEAN', kind: 'boolean' },
        ],
      },
      {
        name: 'sales',
        rows: 3,
        fields: [
          { name: 'region', type: 'VARCHAR', kind: 'text' },
          { name: 'amount', type: 'DOUBLE', kind: 'number' },
          { name: 'day', type: 'DATE', kind: 'date' },
        ],
      },
    ]);
    expect((await fortFailure(s.versions.tables('app', 'v9'))).code).toBe('FORT_ERR_NOT_FOUND');
    s.versions.close();
  });

  it('deletes an idle version at once: closed, its file gone, then unknown', async () => {
    const s = await setup();
    await s.load('v1');
    await s.load('v2');
    expect(await s.count('v1')).toBe(3);
    expect(s.versions.openCount()).toBe(1);
    await s.versions.remove('app', 'v1');
    expect(s.versions.openCount()).toBe(0);
    expect(existsSync(s.file('v1'))).toBe(false);
    expect((await fortFailure(s.count('v1'))).code).toBe('FORT_ERR_NOT_FOUND');
    expect((await fortFailure(s.versions.remove('app', 'v1'))).code).toBe('FORT_ERR_NOT_FOUND');
    // Never opened: deleted all the same; another version untouched.
    await s.versions.remove('app', 'v2');
    expect(existsSync(s.file('v2'))).toBe(false);
    expect((await fortFailure(s.versions.remove('app', '../v1'))).code).toBe('FORT_ERR_BAD_REQUEST');
    s.versions.close();
  });

  it('a version deleted while a query runs on it: the query finishes, new ones do not find it, then the file goes', async () => {
    const s = await setup();
    await s.load('v1');
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const running = s.versions.use('app', 'v1', 'sales', async (t) => {
      entered();
      await held;
      return Number((await t.conn.runAndReadAll('SELECT count(*) FROM sales')).getRows()[0]![0]);
    });
    await inside;
    await s.versions.remove('app', 'v1');
    expect(existsSync(s.file('v1'))).toBe(true);
    expect((await fortFailure(s.count('v1'))).code).toBe('FORT_ERR_NOT_FOUND');
    expect((await fortFailure(s.versions.tables('app', 'v1'))).code).toBe('FORT_ERR_NOT_FOUND');
    // Asked again meanwhile: it is being deleted, which is what was asked.
    await s.versions.remove('app', 'v1');
    release();
    expect(await running).toBe(3);
    expect(existsSync(s.file('v1'))).toBe(false);
    expect(s.versions.openCount()).toBe(0);
    expect((await fortFailure(s.versions.remove('app', 'v1'))).code).toBe('FORT_ERR_NOT_FOUND');
    // The id is free again.
    await s.load('v1');
    expect(await s.count('v1')).toBe(3);
    s.versions.close();
  });

  it('a version deleted while a query runs is removed when the engine stops before the query ends', async () => {
    const s = await setup();
    await s.load('v1');
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const running = s.versions.use('app', 'v1', 'sales', async () => {
      entered();
      await held;
    });
    await inside;
    await s.versions.remove('app', 'v1');
    s.versions.close();
    expect(existsSync(s.file('v1'))).toBe(false);
    release();
    await running;
  });
});
