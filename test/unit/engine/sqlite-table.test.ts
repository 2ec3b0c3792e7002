import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { csvTable } from '../../../engine/load/csv-table.js';
import { sqliteTable, type SqliteTableSource } from '../../../engine/load/sqlite-table.js';
import { writeVersion } from '../../../engine/load/version-file.js';
import { fortFailure } from '../../helpers/assertions.js';
import { tempDir } from '../../helpers/fort.js';

/**
 * SQLite sources into a DuckDB app version through the appender, checked against the sqlite3 CLI
 * (the source's own engine) on the same file: counts, sums, NULLs, unicode, integers past 2^53;
 * and the refusals (anything but one read-only SELECT, BLOBs, a value not of its column's type)
 * that name table, row and column but never a value.
 */

const LIMITS = { memoryLimit: '256MB', threads: 1, maxRows: 100_000 };
const ROWS = 5000;

let dir: string;
let db: string;

/** The sqlite3 CLI's rows for `sql` on `file` (JSON mode: NULL stays null, text stays exact). */
function sqlite3(sql: string, file = db): unknown[][] {
  const out = execFileSync('sqlite3', ['-json', file, sql], { encoding: 'utf8' });
  return out.trim() === '' ? [] : (JSON.parse(out) as Record<string, unknown>[]).map((r) => Object.values(r));
}

/** The rows of `sql` on a written version, as DuckDB answers them. */
async function duckdb(file: string, sql: string): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
  const conn = await instance.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRowsJson();
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** Numbers compared as numbers whatever their text ('1250.0', 1250); everything else as it is. */
const norm = (rows: unknown[][]) =>
  rows.map((r) => r.map((v) => (typeof v === 'string' && /^-?\d{1,15}(\.\d+)?$/.test(v) ? Number(v) : v)));

const source = (name: string, query: string, database = db): SqliteTableSource => ({ name, database, query });

const write = (id: string, ...tables: SqliteTableSource[]) =>
  writeVersion({ dir, id, tables: tables.map((t) => sqliteTable(t)), limits: LIMITS });

beforeAll(() => {
  dir = tempDir('engine-sqlite');
  db = join(dir, 'source.sqlite');
  execFileSync('sqlite3', [
    db,
    `CREATE TABLE sales(id INTEGER PRIMARY KEY, region TEXT, qty INT, amount REAL, paid BOOLEAN, day DATE,
       note VARCHAR(20), big BIGINT, price NUMERIC(10,2), created DATETIME);
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS})
     INSERT INTO sales SELECT i,
       CASE i % 6 WHEN 0 THEN NULL WHEN 1 THEN 'Zürich' WHEN 2 THEN '東京' WHEN 3 THEN 'emoji 🚀 ok'
         WHEN 4 THEN 'quote '' and "dq"' ELSE 'North' END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE i % 13 - 3 END,
       CASE WHEN i % 11 = 0 THEN NULL ELSE i * 0.25 END,
       CASE WHEN i % 9 = 0 THEN NULL ELSE i % 2 END,
       CASE WHEN i % 10 = 0 THEN NULL ELSE date('2024-01-01', '+' || (i % 366) || ' days') END,
       CASE WHEN i % 4 = 0 THEN NULL ELSE 'n' || i END,
       9007199254740993 + i,
       CASE WHEN i % 3 = 0 THEN i ELSE i + 0.5 END,
       datetime(1700000000 + i, 'unixepoch')
     FROM n;
     CREATE TABLE odd(id INTEGER, qty INT, photo BLOB, anything, day DATE);
     INSERT INTO odd VALUES (1, 5, NULL, 'a', '2024-01-01'), (2, 'secret-value', NULL, 'b', '2024-02-30'),
       (3, 7, X'5345435245542d424c4f42', X'5345435245542d424c4f42', 'secret-day');`,
  ]);
});

describe('SQLite into a DuckDB app version', () => {
  let version: string;
  beforeAll(async () => {
    const v = await write('v1', source('sales', 'SELECT * FROM sales'));
    expect(v).toEqual({ file: join(dir, 'v1.duckdb'), tables: [{ name: 'sales', rows: ROWS }] });
    version = v.file;
  });

  it('types the columns from the declared SQLite types', async () => {
    const types = await duckdb(
      version,
      "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'sales' ORDER BY ordinal_position",
    );
    expect(types.map(([n, t]) => `${String(n)}:${String(t)}`)).toEqual([
      'id:BIGINT',
      'region:VARCHAR',
      'qty:BIGINT',
      'amount:DOUBLE',
      'paid:BOOLEAN',
      'day:DATE',
      'note:VARCHAR',
      'big:BIGINT',
      'price:DOUBLE',
      'created:VARCHAR',
    ]);
    expect(readdirSync(dir).sort()).toEqual(['source.sqlite', 'v1.duckdb']);
  });

  it('counts, sums, minima and maxima per region equal sqlite3 on the source (NULLs a group and uncounted)', async () => {
    // sum(BOOLEAN) is no DuckDB aggregate; integers past 2^53 compared as text on both sides.
    const select = (paid: string, text: string) =>
      `SELECT region, count(*), count(qty), sum(qty), count(amount), sum(amount), ${paid}, count(paid), min(day),
         max(day), count(note), CAST(min(big) AS ${text}), CAST(max(big) AS ${text}), sum(price), max(created)
       FROM sales GROUP BY region ORDER BY region IS NULL, region`;
    const expected = sqlite3(select('sum(paid)', 'TEXT'));
    expect(expected).toHaveLength(6);
    expect(expected[5]![0]).toBeNull();
    expect(norm(await duckdb(version, select('sum(CAST(paid AS INTEGER))', 'VARCHAR')))).toEqual(norm(expected));
  });

  it('text comes through byte for byte (unicode, quotes), integers past 2^53 exactly', async () => {
    const sql = (cast: string) => `SELECT id, region, note, CAST(big AS ${cast}) FROM sales WHERE id <= 12 ORDER BY id`;
    const expected = sqlite3(sql('TEXT'));
    expect(expected.map((r) => r[1])).toContain('emoji 🚀 ok');
    expect(expected.map((r) => r[1])).toContain('quote \' and "dq"');
    expect(norm(await duckdb(version, sql('VARCHAR')))).toEqual(norm(expected));
    expect(expected[0]![3]).toBe('9007199254740994');
  });

  it('a WITH query over an expression: its untyped columns load as text; CSV and SQLite tables share a version', async () => {
    const csv = join(dir, 'regions.csv');
    writeFileSync(csv, 'region,manager\nZürich,Anna\n東京,Ken\n');
    const v = await writeVersion({
      dir,
      id: 'v2',
      tables: [
        sqliteTable(
          source(
            'by_region',
            '-- the counts\nWITH t AS (SELECT region, count(*) AS n FROM sales GROUP BY region) SELECT region, n FROM t',
          ),
        ),
        csvTable({
          name: 'regions',
          file: csv,
          delimiter: ',',
          quote: '"',
          header: true,
          columns: [
            { name: 'region', type: 'string' },
            { name: 'manager', type: 'string' },
          ],
        }),
      ],
      limits: LIMITS,
    });
    expect(v.tables).toEqual([
      { name: 'by_region', rows: 6 },
      { name: 'regions', rows: 2 },
    ]);
    const counts = await duckdb(
      v.file,
      "SELECT b.region, b.n, typeof(b.n), r.manager FROM by_region b LEFT JOIN regions r USING (region) WHERE b.region IN ('Zürich', '東京') ORDER BY b.region",
    );
    const expected = sqlite3(
      "SELECT region, count(*) FROM sales WHERE region IN ('Zürich', '東京') GROUP BY region ORDER BY region",
    );
    expect(counts).toEqual([
      ['Zürich', String(expected[0]![1]), 'VARCHAR', 'Anna'],
      ['東京', String(expected[1]![1]), 'VARCHAR', 'Ken'],
    ]);
  });
});

describe('SQLite sources refused', () => {
  const refusal = async (id: string, t: SqliteTableSource, limits = LIMITS) => {
    const err = await fortFailure(writeVersion({ dir, id, tables: [sqliteTable(t)], limits }));
    expect(readdirSync(dir).filter((f) => f.startsWith(`${id}.`))).toEqual([]);
    return err;
  };

  it('anything but a single read-only SELECT, and the source is left as it was', async () => {
    const cases: [string, string][] = [
      ['DELETE FROM sales', 'expected a SELECT (or WITH ... SELECT) statement, got DELETE'],
      ['PRAGMA table_info(sales)', 'expected a SELECT (or WITH ... SELECT) statement, got PRAGMA'],
      ['SELECT 1; DELETE FROM sales', 'expected exactly one SQL statement'],
      ['WITH x AS (SELECT 1) DELETE FROM sales', 'expected a read-only statement that returns rows'],
      ['/* a comment */ UPDATE sales SET qty = 0', 'expected a SELECT (or WITH ... SELECT) statement, got UPDATE'],
      ['SELECT id, id FROM sales', 'the query returns two columns named "id"; give them distinct names with AS'],
      ['SELECT nope FROM sales', 'the SQL does not compile: no such column: nope'],
    ];
    for (const [i, [query, why]] of cases.entries()) {
      const err = await refusal(`r${i}`, source('sales', query));
      expect(err.code).toBe('FORT_ERR_RELOAD_SOURCE');
      expect(err.message).toBe(`sales: ${why}`);
    }
    expect(sqlite3('SELECT count(*), count(qty) FROM sales')).toEqual([[ROWS, ROWS - Math.floor(ROWS / 7)]]);
  });

  it('a BLOB column or value, or a value not of its column type, names table, row and column, never the value', async () => {
    const declared = await refusal('b1', source('odd', 'SELECT id, photo FROM odd'));
    expect(declared.message).toBe('odd: column "photo" is a BLOB, which an app version cannot hold');
    const value = await refusal('b2', source('odd', 'SELECT id, anything FROM odd'));
    expect(value.message).toBe('odd: row 3: column "anything" holds a BLOB, which an app version cannot hold');
    const integer = await refusal('b3', source('odd', 'SELECT id, qty FROM odd'));
    expect(integer.message).toBe('odd: row 2: column "qty" is not a valid BIGINT');
    const date = await refusal('b4', source('odd', 'SELECT id, day FROM odd'));
    expect(date.message).toBe('odd: row 2: column "day" is not a valid DATE');
    for (const err of [declared, value, integer, date]) {
      expect(err.code).toBe('FORT_ERR_RELOAD_SOURCE');
      expect(err.message).not.toMatch(/secret|SECRET|5345/);
    }
  });

  it('a file that is no database, a missing one, and too many rows', async () => {
    const text = join(dir, 'not-a-db.sqlite');
    writeFileSync(text, 'id,name\n1,secret\n'.repeat(100));
    expect((await refusal('f1', source('t', 'SELECT 1', text))).message).toBe('t: the database cannot be read');
    expect((await refusal('f2', source('t', 'SELECT 1', join(dir, 'nope.sqlite')))).message).toBe(
      't: the database cannot be read',
    );
    const big = await refusal('f3', source('sales', 'SELECT * FROM sales'), { ...LIMITS, maxRows: 4999 });
    expect(big.code).toBe('FORT_ERR_RELOAD_TOO_LARGE');
    expect(big.message).toBe('sales: more than 4999 rows');
  });
});

describe('a SQLite load and the event loop', () => {
  let instance: DuckDBInstance;
  beforeAll(async () => {
    execFileSync('sqlite3', [
      db,
      'CREATE TABLE big(i INTEGER, t TEXT); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) INSERT INTO big SELECT i, printf("row %d", i) FROM n;',
    ]);
    instance = await DuckDBInstance.create(':memory:');
  });
  afterAll(() => instance?.closeSync());

  it('keeps turning while it reads, and stops at the next turn once aborted', async () => {
    const load = await instance.connect();
    const look = await instance.connect();
    const abort = new AbortController();
    const writing = sqliteTable(source('big', 'SELECT i, t FROM big')).write(load, {
      stopAfter: 1_000_000,
      signal: abort.signal,
    });
    const settled = writing.then(
      () => 'done',
      () => 'failed',
    );
    // Another connection sees the table once the rows are being read; only the load's turns let
    // this loop (and the engine's queries) run meanwhile.
    for (;;) {
      const n = (await look.runAndReadAll("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'big'")).getRows();
      if (Number(n[0]![0]) === 1) break;
      expect(await Promise.race([settled, nextTurn().then(() => 'running')])).toBe('running');
    }
    abort.abort();
    const err = await fortFailure(writing);
    expect(err.code).toBe('FORT_ERR_RELOAD_CANCELLED');
    expect(err.message).toBe('big: the load was cancelled');
    load.closeSync();
    look.closeSync();
  });
});
