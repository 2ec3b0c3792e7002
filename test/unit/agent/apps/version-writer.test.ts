import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { openTableSource } from '../../../../agent/apps/connectors/index.js';
import type { ColumnSpec, TableSource } from '../../../../agent/apps/connectors/types.js';
import { parseAppDefinition } from '../../../../agent/apps/definition.js';
import { createVersionReader } from '../../../../agent/apps/version-reader.js';
import { isTempVersionFile, TMP_SUFFIX, writeAppVersion } from '../../../../agent/apps/version-writer.js';
import { FortError } from '../../../../lib/errors.js';
import { tempDir } from '../../../helpers/fort.js';
import { fortFailure } from '../../../helpers/assertions.js';

const log = pino({ level: 'silent' });
const never = () => new AbortController().signal;

/** A source with only `rows` (no batches): the writer's generic path. */
function rowsSource(
  table: string,
  columns: ColumnSpec[],
  count: number,
  row: (i: number) => unknown[],
  opts: { failAt?: number; error?: Error; onRow?: (i: number) => void; ignoreSignal?: boolean } = {},
): TableSource {
  return {
    table,
    columns,
    async *rows(signal) {
      for (let i = 1; i <= count; i++) {
        if (signal.aborted && !opts.ignoreSignal)
          throw new FortError('FORT_ERR_RELOAD_CANCELLED', 'cancelled by the source');
        if (i === opts.failAt)
          throw opts.error ?? new FortError('FORT_ERR_RELOAD_SOURCE', `table "${table}": row ${i} broke`);
        opts.onRow?.(i);
        yield row(i);
      }
    },
  };
}

const failure = fortFailure;

describe('writeAppVersion', () => {
  let root: string;
  let data: string;
  let dir: string;

  beforeEach(() => {
    root = tempDir('version-writer');
    data = join(root, 'data');
    dir = join(root, 'apps', 'sales');
    mkdirSync(data);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const leftovers = () => readdirSync(dir);

  it('writes every source into its own typed table and returns counts and the file hash', async () => {
    writeFileSync(
      join(data, 'orders.csv'),
      'id,customer,amount,paid,day\n1,Ann,12.5,true,2024-01-31\n2,,3,no,\n3,"Bo, Jr.",-1e2,1,2024-02-29\n',
    );
    const def = parseAppDefinition(
      JSON.stringify({
        id: 'sales',
        name: 'Sales',
        space: 's',
        tables: [
          {
            name: 'orders',
            connector: 'csv',
            path: 'orders.csv',
            columns: [
              { name: 'id', type: 'integer' },
              { name: 'customer', type: 'string' },
              { name: 'amount', type: 'number' },
              { name: 'paid', type: 'boolean' },
              { name: 'day', type: 'date' },
            ],
          },
        ],
      }),
      'json',
    );
    const orders = openTableSource(def.tables[0]!, { dataDirs: [data], httpAllowedHosts: [] });
    // Across transaction boundaries (10 000 rows) and with a tail the multi-row INSERT does not fill.
    const lines = rowsSource(
      'lines',
      [
        { name: 'n', type: 'integer' },
        { name: 'label', type: 'string' },
        { name: 'raw', type: 'any' },
      ],
      20_007,
      (i) => [i, `line ${i}`, i % 3 === 0 ? Buffer.from([i % 256]) : i % 3 === 1 ? 2n ** 60n + BigInt(i) : null],
    );

    const written = await writeAppVersion({ dir, sources: [orders, lines], maxRows: 100_000, signal: never(), log });

    expect(written.tables).toEqual([
      { name: 'orders', rows: 3 },
      { name: 'lines', rows: 20_007 },
    ]);
    expect(written.rowCount).toBe(20_010);
    expect(written.tmpFile.startsWith(join(dir, '.reload-'))).toBe(true);
    expect(written.tmpFile.endsWith(TMP_SUFFIX)).toBe(true);
    expect(isTempVersionFile(written.tmpFile)).toBe(true);
    expect(statSync(written.tmpFile).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(written.contentHash).toBe(createHash('sha256').update(readFileSync(written.tmpFile)).digest('hex'));
    // Only the file itself: no journal or WAL beside it.
    expect(leftovers()).toEqual([written.tmpFile.slice(dir.length + 1)]);

    const db = new Database(written.tmpFile, { readonly: true });
    try {
      expect(db.prepare('SELECT * FROM orders ORDER BY rowid').raw().all()).toEqual([
        [1, 'Ann', 12.5, 1, '2024-01-31'],
        [2, null, 3, 0, null],
        [3, 'Bo, Jr.', -100, 1, '2024-02-29'],
      ]);
      expect(
        db
          .prepare(
            'SELECT typeof(id), typeof(customer), typeof(amount), typeof(paid), typeof(day) FROM orders WHERE rowid = 1',
          )
          .raw()
          .get(),
      ).toEqual(['integer', 'text', 'real', 'integer', 'text']);
      // Declared affinities: what an app's readers can rely on.
      expect(
        (db.pragma('table_info(orders)') as { name: string; type: string }[]).map((c) => [c.name, c.type]),
      ).toEqual([
        ['id', 'INTEGER'],
        ['customer', 'TEXT'],
        ['amount', 'REAL'],
        ['paid', 'INTEGER'],
        ['day', 'TEXT'],
      ]);
      expect(db.prepare('SELECT count(*), min(n), max(n), count(DISTINCT n) FROM lines').raw().get()).toEqual([
        20_007, 1, 20_007, 20_007,
      ]);
      expect(
        db
          .prepare('SELECT n, label, raw FROM lines WHERE n IN (1, 3, 20007) ORDER BY n')
          .safeIntegers(true)
          .raw()
          .all(),
      ).toEqual([
        [1n, 'line 1', 2n ** 60n + 1n],
        [3n, 'line 3', Buffer.from([3])],
        [20007n, 'line 20007', Buffer.from([20007 % 256])],
      ]);
      // Rows in the order the source gave them (the reader pages in rowid order).
      expect(db.prepare('SELECT n FROM lines ORDER BY rowid LIMIT 3 OFFSET 10030').pluck().all()).toEqual([
        10031, 10032, 10033,
      ]);
    } finally {
      db.close();
    }
    // The app API's reader sees the same tables.
    const reader = createVersionReader();
    try {
      expect(reader.tables(written.tmpFile)).toEqual([
        { name: 'lines', rowCount: 20_007 },
        { name: 'orders', rowCount: 3 },
      ]);
    } finally {
      reader.close();
    }
  });

  it('binds wide tables in smaller multi-row INSERTs', async () => {
    const columns = Array.from({ length: 300 }, (_, i) => ({ name: `c${i}`, type: 'integer' as const }));
    const written = await writeAppVersion({
      dir,
      sources: [rowsSource('wide', columns, 7, (r) => columns.map((_, c) => r * 1000 + c))],
      maxRows: 10,
      signal: never(),
      log,
    });
    const db = new Database(written.tmpFile, { readonly: true });
    try {
      expect(db.prepare('SELECT c0, c299 FROM wide ORDER BY rowid').raw().all()).toEqual(
        Array.from({ length: 7 }, (_, i) => [(i + 1) * 1000, (i + 1) * 1000 + 299]),
      );
    } finally {
      db.close();
    }
  });

  it('fails with FORT_ERR_RELOAD_TOO_LARGE beyond max_rows, over all tables, and removes the temp file', async () => {
    const cols = [{ name: 'n', type: 'integer' as const }];
    const err = await failure(
      writeAppVersion({
        dir,
        sources: [rowsSource('a', cols, 60, (i) => [i]), rowsSource('b', cols, 60, (i) => [i])],
        maxRows: 100,
        signal: never(),
        log,
      }),
    );
    expect(err.code).toBe('FORT_ERR_RELOAD_TOO_LARGE');
    expect(err.message).toBe('the app version would have more than 100 rows (reloads.max_rows); stopped in table "b"');
    expect(leftovers()).toEqual([]);
    // Exactly max_rows is fine.
    const ok = await writeAppVersion({
      dir,
      sources: [rowsSource('a', cols, 50, (i) => [i]), rowsSource('b', cols, 50, (i) => [i])],
      maxRows: 100,
      signal: never(),
      log,
    });
    expect(ok.rowCount).toBe(100);
  });

  it('removes the temp file when a source fails, and passes its error on', async () => {
    const err = await failure(
      writeAppVersion({
        dir,
        sources: [rowsSource('a', [{ name: 'n', type: 'integer' }], 25_000, (i) => [i], { failAt: 15_000 })],
        maxRows: 100_000,
        signal: never(),
        log,
      }),
    );
    expect(err.code).toBe('FORT_ERR_RELOAD_SOURCE');
    expect(err.message).toBe('table "a": row 15000 broke');
    expect(leftovers()).toEqual([]);
  });

  it('removes the temp file when aborted mid-load and reports the cancellation', async () => {
    const ac = new AbortController();
    const source = rowsSource('a', [{ name: 'n', type: 'integer' }], 1_000_000, (i) => [i], {
      onRow: (i) => i === 25_000 && ac.abort(),
    });
    const err = await failure(writeAppVersion({ dir, sources: [source], maxRows: 10_000_000, signal: ac.signal, log }));
    expect(err.code).toBe('FORT_ERR_RELOAD_CANCELLED');
    expect(leftovers()).toEqual([]);
    // Aborted before it starts: nothing is left either.
    const err2 = await failure(writeAppVersion({ dir, sources: [source], maxRows: 10, signal: ac.signal, log }));
    expect(err2.code).toBe('FORT_ERR_RELOAD_CANCELLED');
    expect(leftovers()).toEqual([]);
  });

  it('notices an abort itself, between transactions, when a source does not', async () => {
    const ac = new AbortController();
    let read = 0;
    const source = rowsSource('a', [{ name: 'n', type: 'integer' }], 1_000_000, (i) => [i], {
      ignoreSignal: true,
      onRow: (i) => ((read = i), i === 25_000 && ac.abort()),
    });
    const err = await failure(writeAppVersion({ dir, sources: [source], maxRows: 10_000_000, signal: ac.signal, log }));
    expect(err.code).toBe('FORT_ERR_RELOAD_CANCELLED');
    expect(err.message).toBe('reload cancelled');
    expect(read).toBe(30_000);
    expect(leftovers()).toEqual([]);
  });

  it('aborts a CSV load through the connector and cleans up', async () => {
    const lines = ['a,b'];
    for (let i = 0; i < 300_000; i++) lines.push(`${i},x${i}`);
    writeFileSync(join(data, 'big.csv'), `${lines.join('\n')}\n`);
    const table = parseAppDefinition(
      JSON.stringify({
        id: 'x',
        name: 'X',
        space: 's',
        tables: [
          {
            name: 'big',
            connector: 'csv',
            path: 'big.csv',
            columns: [
              { name: 'a', type: 'integer' },
              { name: 'b', type: 'string' },
            ],
          },
        ],
      }),
      'json',
    ).tables[0]!;
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 5);
    const err = await failure(
      writeAppVersion({
        dir,
        sources: [openTableSource(table, { dataDirs: [data], httpAllowedHosts: [] })],
        maxRows: 10_000_000,
        signal: ac.signal,
        log,
      }),
    );
    expect(err.code).toBe('FORT_ERR_RELOAD_CANCELLED');
    expect(leftovers()).toEqual([]);
  });

  it('reports a full disk as FORT_ERR_RELOAD_TOO_LARGE', async () => {
    const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    const err = await failure(
      writeAppVersion({
        dir,
        sources: [rowsSource('a', [{ name: 'n', type: 'integer' }], 10, (i) => [i], { failAt: 5, error: full })],
        maxRows: 100,
        signal: never(),
        log,
      }),
    );
    expect(err.code).toBe('FORT_ERR_RELOAD_TOO_LARGE');
    expect(err.message).toBe('disk full while writing the app version');
    expect(leftovers()).toEqual([]);
  });

  it('refuses a source whose rows do not match its columns', async () => {
    const err = await failure(
      writeAppVersion({
        dir,
        sources: [
          rowsSource(
            'a',
            [
              { name: 'n', type: 'integer' },
              { name: 'm', type: 'integer' },
            ],
            3,
            (i) => (i === 2 ? [i] : [i, i]),
          ),
        ],
        maxRows: 100,
        signal: never(),
        log,
      }),
    );
    expect(err.message).toBe('table "a": row 2 has 1 values for 2 columns');
    expect(leftovers()).toEqual([]);
  });
});

describe('isTempVersionFile', () => {
  it('matches the temp files of reloads and seeds, not versions', () => {
    expect(isTempVersionFile('.reload-0123abcd.sqlite.tmp')).toBe(true);
    expect(isTempVersionFile('/var/lib/fort/apps/sales/.seed-00ff.sqlite.tmp')).toBe(true);
    expect(isTempVersionFile('12.sqlite')).toBe(false);
    expect(isTempVersionFile('reload.sqlite.tmp')).toBe(false);
    expect(isTempVersionFile('.reload-1.sqlite')).toBe(false);
  });
});
