import { describe, expect, it } from 'vitest';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { csvTable, type CsvTableSource } from '../../../engine/load/csv-table.js';
import { writeVersion, type VersionLimits } from '../../../engine/load/version-file.js';
import { runQuery } from '../../../engine/query/run.js';
import { querySpecSchema } from '../../../engine/query/spec.js';
import { readTableSchema } from '../../../engine/query/table-schema.js';
import { fortFailure } from '../../helpers/assertions.js';
import { tempDir } from '../../helpers/fort.js';

const LIMITS = { memoryLimit: '256MB', threads: 1, maxRows: 1000 };
const COLUMNS: CsvTableSource['columns'] = [
  { name: 'region', type: 'string' },
  { name: 'qty', type: 'integer' },
  { name: 'amount', type: 'number' },
  { name: 'paid', type: 'boolean' },
  { name: 'day', type: 'date' },
];

const writeCsvVersion = (o: { dir: string; id: string; tables: CsvTableSource[]; limits: VersionLimits }) =>
  writeVersion({ ...o, tables: o.tables.map((t) => csvTable(t)) });

function source(dir: string, text: string, extra: Partial<CsvTableSource> = {}): CsvTableSource {
  const file = join(dir, `${extra.name ?? 'sales'}.csv`);
  writeFileSync(file, text);
  return { name: 'sales', file, delimiter: ',', quote: '"', header: true, columns: COLUMNS, ...extra };
}

async function open(file: string) {
  const instance = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
  const conn = await instance.connect();
  return {
    target: { conn, schema: await readTableSchema(conn, 'sales'), version: 'v1' },
    close: () => {
      conn.closeSync();
      instance.closeSync();
    },
  };
}

describe('CSV into a DuckDB app version', () => {
  it('loads with the definition types (quoted delimiters and line breaks, unicode, empty cells as NULL) into <id>.duckdb', async () => {
    const dir = tempDir('engine-version');
    const csv =
      'region,qty,amount,paid,day\n' +
      'North,3,10.5,true,2024-01-31\n' +
      '"Zürich, Altstadt",-2,,false,2024-02-29\n' +
      '"multi\nline",,1e3,true,\n';
    const v = await writeCsvVersion({ dir, id: 'v1', tables: [source(dir, csv)], limits: LIMITS });
    expect(v).toEqual({ file: join(dir, 'v1.duckdb'), tables: [{ name: 'sales', rows: 3 }] });
    expect(readdirSync(dir).sort()).toEqual(['sales.csv', 'v1.duckdb']);
    const db = await open(v.file);
    try {
      expect([...db.target.schema.fields.values()].map((f) => `${f.name}:${f.type}`)).toEqual([
        'region:VARCHAR',
        'qty:BIGINT',
        'amount:DOUBLE',
        'paid:BOOLEAN',
        'day:DATE',
      ]);
      const a = await runQuery(
        db.target,
        querySpecSchema.parse({ dimensions: ['region', 'qty', 'amount', 'paid', 'day'], sort: [{ by: 'qty' }] }),
        { timeoutMs: 5000, maxAnswerBytes: 1 << 20, maxGroups: 1000 },
      );
      expect(a.rows).toEqual([
        ['Zürich, Altstadt', -2, null, false, '2024-02-29'],
        ['North', 3, 10.5, true, '2024-01-31'],
        ['multi\nline', null, 1000, true, null],
      ]);
    } finally {
      db.close();
    }
  });

  it('a cell of the wrong type fails the load naming table, line and column, never the value; nothing is left', async () => {
    const dir = tempDir('engine-version-bad');
    const csv = 'region,qty,amount,paid,day\nNorth,3,1,true,2024-01-01\nSouth,secret-value,2,false,2024-01-02\n';
    const err = await fortFailure(writeCsvVersion({ dir, id: 'v2', tables: [source(dir, csv)], limits: LIMITS }));
    expect(err.code).toBe('FORT_ERR_RELOAD_SOURCE');
    expect(err.message).toBe('sales: line 3: column "qty" is not a valid BIGINT');
    expect(err.message).not.toContain('secret-value');
    expect(readdirSync(dir)).toEqual(['sales.csv']);
  });

  it('a row with too few fields, a missing file, and too many rows each fail clearly', async () => {
    const dir = tempDir('engine-version-more');
    const short = await fortFailure(
      writeCsvVersion({
        dir,
        id: 'v3',
        tables: [source(dir, 'region,qty,amount,paid,day\nNorth,3\n')],
        limits: LIMITS,
      }),
    );
    expect(short.message).toBe('sales: line 2: expected 5 fields, found 2');
    const missing = await fortFailure(
      writeCsvVersion({
        dir,
        id: 'v4',
        tables: [{ ...source(dir, ''), file: join(dir, 'nope.csv') }],
        limits: LIMITS,
      }),
    );
    expect(missing.message).toBe('sales: the file cannot be read');
    const rows = 'region,qty,amount,paid,day\n' + 'a,1,1,true,2024-01-01\n'.repeat(6);
    const big = await fortFailure(
      writeCsvVersion({ dir, id: 'v5', tables: [source(dir, rows)], limits: { ...LIMITS, maxRows: 5 } }),
    );
    expect(big.code).toBe('FORT_ERR_RELOAD_TOO_LARGE');
    expect(big.message).toBe('sales: more than 5 rows');
    expect(readdirSync(dir).filter((f) => f.includes('duckdb'))).toEqual([]);
  });
});
