import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { createAppCatalog } from '../../../../agent/apps/catalog.js';
import { NotFoundError } from '../../../../agent/apps/errors.js';
import { createVersionReader, type VersionReader } from '../../../../agent/apps/version-reader.js';
import { createPageCache } from '../../../../agent/apps/page-cache.js';
import { openStore, type Store } from '../../../../agent/store/database.js';
import { FortError, StoreError } from '../../../../lib/errors.js';
import { seedApp } from '../../../helpers/apps.js';
import { tempDir } from '../../../helpers/fort.js';

const log = pino({ level: 'silent' });
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** File descriptors this process holds on files under `dir` (Linux): what "closed" really means. */
function openFdsUnder(dir: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir);
    } catch {
      return false;
    }
  }).length;
}

describe('app version reader', () => {
  let dir: string;
  let appsDir: string;
  let store: Store;
  let reader: VersionReader;

  /** Seed an app and return its current version file. */
  const version = (id: string, tables: Parameters<typeof seedApp>[2]['tables']) =>
    seedApp(store.db, appsDir, { id, name: id, space: 'test', tables }).file!;

  beforeEach(() => {
    dir = tempDir('versions');
    appsDir = join(dir, 'apps');
    store = openStore({ path: join(dir, 'agent.db'), log });
    reader = createVersionReader({ maxOpen: 3 });
  });
  afterEach(() => {
    reader.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists user tables sorted by name with row counts', () => {
    const file = version('sales', {
      orders: { columns: ['id', 'total'], rows: range(5).map((i) => [i, i * 1.5]) },
      customers: {
        columns: ['id', 'name'],
        rows: [
          [1, 'Ada'],
          [2, 'Grace'],
        ],
      },
      Empty: { columns: ['x'], rows: [] },
    });
    new Database(file)
      .exec('CREATE INDEX orders_total ON orders(total); CREATE VIEW big AS SELECT * FROM orders WHERE total > 3')
      .close();
    expect(reader.tables(file)).toEqual([
      { name: 'Empty', rowCount: 0 },
      { name: 'customers', rowCount: 2 },
      { name: 'orders', rowCount: 5 },
    ]);
  });

  it('a page has a byte budget: megabyte cells are read row by row and refused past it; BLOBs as base64', () => {
    const MiB = 1024 * 1024;
    const big = (i: number) => String(i).repeat(MiB);
    const file = version('wide', {
      docs: {
        columns: ['id', 'body', 'raw'],
        rows: range(5).map((i) => [i, big(i), Buffer.from([0, 1, 2, 255, i])]),
      },
    });
    const pages = createPageCache({ reader, maxBytes: 64 * MiB, maxPageBytes: 3 * MiB });
    const two = JSON.parse(pages.json(file, 'docs', 0, 2).toString()) as { rows: unknown[][] };
    expect(two.rows.map((r) => [r[0], (r[1] as string).length, r[2]])).toEqual([
      [0, MiB, Buffer.from([0, 1, 2, 255, 0]).toString('base64')],
      [1, MiB, Buffer.from([0, 1, 2, 255, 1]).toString('base64')],
    ]);
    let refused: unknown;
    try {
      pages.json(file, 'docs', 0, 5);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(FortError);
    expect(refused).toMatchObject({
      code: 'FORT_ERR_QUERY_TOO_LARGE',
      message: `this page of docs is over ${3 * MiB} bytes (api.max_answer_mib) by row 3; ask for fewer rows`,
    });
    // The same page from row 3 on fits: the budget is per page, nothing was cached for the refused one.
    expect((JSON.parse(pages.json(file, 'docs', 3, 2).toString()) as { rows: unknown[] }).rows).toHaveLength(2);
  });

  it('pages rows in rowid order with offset, limit and the total', () => {
    const file = version('sales', {
      orders: { columns: ['id', 'label', 'amount'], rows: range(25).map((i) => [i, `row ${i}`, i * 10]) },
    });
    const first = reader.rows(file, 'orders', 0, 10);
    expect(first.columns).toEqual(['id', 'label', 'amount']);
    expect(first.total).toBe(25);
    expect(first.rows).toHaveLength(10);
    expect(first.rows[0]).toEqual([0, 'row 0', 0]);
    expect(reader.rows(file, 'orders', 10, 10).rows.map((r) => r[0])).toEqual(range(10).map((i) => i + 10));
    expect(reader.rows(file, 'orders', 20, 10)).toEqual({
      columns: ['id', 'label', 'amount'],
      rows: range(5).map((i) => [20 + i, `row ${20 + i}`, (20 + i) * 10]),
      total: 25,
    });
    expect(reader.rows(file, 'orders', 25, 10)).toEqual({ columns: ['id', 'label', 'amount'], rows: [], total: 25 });
    expect(reader.rows(file, 'orders', 3, 0).rows).toEqual([]);
  });

  it('serves a rows page as JSON from memory after the first read, bounded in bytes', () => {
    const file = version('sales', {
      orders: { columns: ['id', 'label'], rows: range(50).map((i) => [i, `row ${i}`]) },
    });
    const pages = createPageCache({ reader, maxBytes: 1024 });
    const first = pages.json(file, 'orders', 10, 5);
    expect(JSON.parse(first.toString('utf8'))).toEqual({
      columns: ['id', 'label'],
      rows: range(5).map((i) => [10 + i, `row ${10 + i}`]),
      offset: 10,
      limit: 5,
      total: 50,
    });
    // The same bytes even with the reader gone: the file never changes, so neither does the page.
    reader.close();
    const offline = createPageCache({
      reader: {
        ...reader,
        rows: () => {
          throw new Error('must not read');
        },
      },
      maxBytes: 4096,
    });
    expect(() => offline.json(file, 'orders', 10, 5)).toThrow('must not read');
    expect(pages.json(file, 'orders', 10, 5)).toBe(first);
    expect(pages.stats()).toMatchObject({ pages: 1, hits: 1, misses: 1 });
    for (let o = 0; o < 50; o += 5) pages.json(file, 'orders', o, 5);
    expect(pages.stats().bytes).toBeLessThanOrEqual(1024);
    expect(pages.stats().pages).toBeLessThan(10);
    expect(() => pages.json(file, 'nope', 0, 5)).toThrow(NotFoundError);
  });

  it('keeps nulls and odd column names as they are; a blob comes as base64 text', () => {
    const file = version('odd', {
      'my table': { columns: ['select', 'a "quoted" col', 'blob'], rows: [[null, 'x', Buffer.from([1, 2])]] },
    });
    const page = reader.rows(file, 'my table', 0, 10);
    expect(page.columns).toEqual(['select', 'a "quoted" col', 'blob']);
    expect(page.rows).toEqual([[null, 'x', Buffer.from([1, 2]).toString('base64')]]);
  });

  it('orders by rowid even when a column is called rowid, and WITHOUT ROWID tables by primary key', () => {
    const file = join(dir, 'hand-made.sqlite');
    const db = new Database(file);
    db.exec(`CREATE TABLE shadow (rowid TEXT, v INTEGER);
      INSERT INTO shadow VALUES ('c', 1), ('a', 2), ('b', 3);
      CREATE TABLE keyed (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID;
      INSERT INTO keyed VALUES ('z', 1), ('a', 2), ('m', 3);`);
    db.close();
    expect(reader.rows(file, 'shadow', 0, 10).rows).toEqual([
      ['c', 1],
      ['a', 2],
      ['b', 3],
    ]);
    expect(reader.rows(file, 'keyed', 0, 10).rows).toEqual([
      ['a', 2],
      ['m', 3],
      ['z', 1],
    ]);
  });

  it('refuses unknown tables, injection attempts and internal tables with a typed not-found error', () => {
    const file = version('sales', { t: { columns: ['a'], rows: [[1]] } });
    new Database(file).exec('ANALYZE').close(); // creates sqlite_stat1
    for (const bad of [
      'nope',
      'T',
      'x"; DROP TABLE t; --',
      't" --',
      '"t"',
      't; DROP TABLE t',
      'sqlite_master',
      'sqlite_stat1',
      '',
    ]) {
      let caught: unknown;
      try {
        reader.rows(file, bad, 0, 10);
      } catch (err) {
        caught = err;
      }
      expect(caught, bad).toBeInstanceOf(NotFoundError);
      expect(caught).toBeInstanceOf(FortError);
      expect((caught as FortError).code).toBe('FORT_ERR_NOT_FOUND');
      expect((caught as Error).message).not.toContain(dir);
    }
    expect(reader.tables(file)).toEqual([{ name: 't', rowCount: 1 }]);
    expect(reader.rows(file, 't', 0, 10).rows).toEqual([[1]]);
  });

  it('refuses a negative or fractional offset or limit', () => {
    const file = version('sales', { t: { columns: ['a'], rows: [[1]] } });
    expect(() => reader.rows(file, 't', -1, 10)).toThrow(RangeError);
    expect(() => reader.rows(file, 't', 0, 1.5)).toThrow(RangeError);
    expect(() => reader.rows(file, 't', 0, -1)).toThrow(RangeError);
  });

  it('an app without tables or without any version reads as empty / nothing', () => {
    const noTables = version('blank', {});
    expect(reader.tables(noTables)).toEqual([]);
    expect(() => reader.rows(noTables, 't', 0, 1)).toThrow(NotFoundError);
    seedApp(store.db, appsDir, { id: 'never', name: 'Never reloaded', space: 'test' });
    expect(createAppCatalog({ db: store.db, appsDir }).currentVersionFile('never')).toBeUndefined();
  });

  it('opens files read-only and never creates one', () => {
    const file = version('sales', { t: { columns: ['a'], rows: [[1]] } });
    const before = readFileSync(file);
    reader.rows(file, 't', 0, 10);
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(() => reader.tables(join(appsDir, 'sales', 'missing.sqlite'))).toThrow(StoreError);
    writeFileSync(
      join(dir, 'not-a-db.sqlite'),
      'this is not a database, just some text long enough to have a header '.repeat(20),
    );
    expect(() => reader.tables(join(dir, 'not-a-db.sqlite'))).toThrow(StoreError);
    expect(reader.openCount()).toBe(1);
  });

  it('keeps at most maxOpen handles, closes the evicted ones and reopens them on demand', () => {
    const files = range(7).map((i) =>
      version(`app${i}`, { t: { columns: ['n'], rows: range(i + 1).map((j) => [j]) } }),
    );
    for (const [i, file] of files.entries()) {
      expect(reader.tables(file)).toEqual([{ name: 't', rowCount: i + 1 }]);
      expect(reader.rows(file, 't', 0, 100).rows).toHaveLength(i + 1);
      expect(reader.openCount()).toBeLessThanOrEqual(3);
    }
    expect(reader.openCount()).toBe(3);
    expect(openFdsUnder(appsDir)).toBe(3);
    // The first files were evicted: reading them again reopens them, still bounded.
    for (const [i, file] of [...files.entries()].reverse()) {
      expect(reader.rows(file, 't', i, 5)).toEqual({ columns: ['n'], rows: [[i]], total: i + 1 });
      expect(reader.openCount()).toBeLessThanOrEqual(3);
    }
    expect(openFdsUnder(appsDir)).toBe(3);
    reader.close();
    expect(reader.openCount()).toBe(0);
    expect(openFdsUnder(appsDir)).toBe(0);
    expect(reader.rows(files[2]!, 't', 0, 100).total).toBe(3);
    expect(reader.openCount()).toBe(1);
  });

  it('closes evicted handles (the file can be removed and a later read fails cleanly)', () => {
    const small = createVersionReader({ maxOpen: 1 });
    const a = version('a', { t: { columns: ['n'], rows: [[1]] } });
    const b = version('b', { t: { columns: ['n'], rows: [[2]] } });
    expect(small.rows(a, 't', 0, 1).rows).toEqual([[1]]);
    expect(small.rows(b, 't', 0, 1).rows).toEqual([[2]]);
    expect(small.openCount()).toBe(1);
    rmSync(a);
    // `a`'s handle was closed on eviction, so it cannot serve the deleted file from an open descriptor.
    expect(() => small.rows(a, 't', 0, 1)).toThrow(StoreError);
    expect(small.rows(b, 't', 0, 1).rows).toEqual([[2]]);
    small.close();
  });

  it('refuses a maxOpen below one', () => {
    expect(() => createVersionReader({ maxOpen: 0 })).toThrow(RangeError);
  });
});
