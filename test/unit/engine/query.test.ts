import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { runFieldValues, runQuery, type QueryLimits, type QueryTarget } from '../../../engine/query/run.js';
import {
  fieldValuesSpecSchema,
  querySpecSchema,
  type CellValue,
  type QuerySpecInput,
} from '../../../engine/query/spec.js';
import { readTableSchema } from '../../../engine/query/table-schema.js';
import { FortError } from '../../../lib/errors.js';
import { fortFailure } from '../../helpers/assertions.js';
import { tempDir } from '../../helpers/fort.js';

/**
 * The engine's query specs on DuckDB, checked against the same questions asked of the sqlite3
 * CLI (an independent engine) over the same CSV: every measure kind and selection kind, with
 * NULLs, dates, unicode and many distinct values.
 */

const REGIONS = ['North', 'South', 'East', 'West', 'Zürich', null];
const PRODUCTS = ['Widget', 'Gadget', 'Gizmo', 'Doohickey', 'Thingamajig'];
const ROWS = 20_000;
const LIMITS: QueryLimits = { timeoutMs: 10_000, maxAnswerBytes: 8 * 1024 * 1024, maxGroups: 1_000_000 };

/** Deterministic rows (mulberry32): region, product, customer (~8.6 k of 10 k distinct), day, amount, qty. */
function rows(): (string | number | null)[][] {
  let seed = 42;
  const next = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out: (string | number | null)[][] = [];
  for (let i = 0; i < ROWS; i++) {
    const day = new Date(Date.UTC(2024, 0, 1) + Math.floor(next() * 366) * 86_400_000).toISOString().slice(0, 10);
    out.push([
      REGIONS[Math.floor(next() * REGIONS.length)]!,
      PRODUCTS[Math.floor(next() * PRODUCTS.length)]!,
      `cust-${Math.floor(next() * 10_000)}`,
      day,
      next() < 0.05 ? null : Math.round(next() * 100_000) / 100,
      Math.floor(next() * 20) - 2,
    ]);
  }
  return out;
}

let dir: string;
let csv: string;
let sqlite: string;
let instance: DuckDBInstance;
let conn: DuckDBConnection;
let target: QueryTarget;

/** The sqlite3 CLI's answer to `sql` over the same data: rows of strings (`|`-separated, NULL as ''). */
function sqlite3(sql: string): string[][] {
  const out = execFileSync('sqlite3', ['-batch', '-noheader', sqlite, sql], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('|'));
}

const query = (spec: QuerySpecInput, version = target) => runQuery(version, querySpecSchema.parse(spec), LIMITS);
const asText = (rows: CellValue[][]) => rows.map((r) => r.map((v) => (v === null ? '' : String(v))));

beforeAll(async () => {
  dir = tempDir('engine-query');
  csv = join(dir, 'sales.csv');
  const text = ['region,product,customer,day,amount,qty']
    .concat(rows().map((r) => r.map((v) => (v === null ? '' : String(v))).join(',')))
    .join('\n');
  writeFileSync(csv, `${text}\n`);
  sqlite = join(dir, 'sales.sqlite');
  execFileSync('sqlite3', [
    sqlite,
    'CREATE TABLE sales(region TEXT, product TEXT, customer TEXT, day TEXT, amount REAL, qty INTEGER);',
    '.mode csv',
    `.import --skip 1 ${csv} sales`,
    "UPDATE sales SET region = NULL WHERE region = ''; UPDATE sales SET amount = NULL WHERE amount = '';",
  ]);
  instance = await DuckDBInstance.create(':memory:');
  conn = await instance.connect();
  await conn.run(
    `CREATE TABLE sales AS SELECT * FROM read_csv('${csv}', header = true, columns = {'region': 'VARCHAR', 'product': 'VARCHAR', 'customer': 'VARCHAR', 'day': 'DATE', 'amount': 'DECIMAL(10,2)', 'qty': 'INTEGER'})`,
  );
  target = { conn, schema: await readTableSchema(conn, 'sales'), version: 'v1' };
});
afterAll(() => {
  conn?.closeSync();
  instance?.closeSync();
});

describe('engine query specs on DuckDB', () => {
  it('every measure kind by a dimension equals sqlite3 on the same CSV (NULL region a group of its own)', async () => {
    const a = await query({
      dimensions: ['region'],
      measures: [
        { op: 'count' },
        { op: 'sum', field: 'qty' },
        { op: 'sum', field: 'amount' },
        { op: 'count', field: 'amount' },
        { op: 'count_distinct', field: 'customer' },
        { op: 'avg', field: 'qty' },
        { op: 'min', field: 'day' },
        { op: 'max', field: 'amount' },
      ],
      sort: [{ by: 'region', dir: 'asc' }],
    });
    expect(a.columns.map((c) => c.name)).toEqual([
      'region',
      'count',
      'sum_qty',
      'sum_amount',
      'count_amount',
      'count_distinct_customer',
      'avg_qty',
      'min_day',
      'max_amount',
    ]);
    const expected = sqlite3(
      'SELECT region, count(*), sum(qty), printf("%.2f", sum(amount)), count(amount), count(DISTINCT customer), printf("%.6f", avg(qty)), min(day), printf("%.2f", max(amount)) FROM sales GROUP BY region ORDER BY region IS NULL, region',
    );
    expect(a.rows).toHaveLength(REGIONS.length);
    expect(
      a.rows.map((r) => [
        r[0] ?? '',
        String(r[1]),
        String(r[2]),
        (r[3] as number).toFixed(2),
        String(r[4]),
        String(r[5]),
        (r[6] as number).toFixed(6),
        String(r[7]),
        (r[8] as number).toFixed(2),
      ]),
    ).toEqual(expected);
    expect(a.next).toBeNull();
    expect(a.version).toBe('v1');
  });

  it('selections (values with NULL, date range, number range, text contains, unicode) equal sqlite3', async () => {
    const a = await query({
      selections: [
        { field: 'region', values: ['Zürich', null, 'North'] },
        { field: 'day', range: { min: '2024-03-01', max: '2024-06-30' } },
        { field: 'amount', range: { min: 100 } },
        { field: 'product', contains: 'GAD' },
      ],
      dimensions: ['region', 'product'],
      measures: [{ op: 'count' }, { op: 'sum', field: 'qty' }],
    });
    const expected = sqlite3(
      "SELECT region, product, count(*), sum(qty) FROM sales WHERE (region IN ('Zürich', 'North') OR region IS NULL) AND day BETWEEN '2024-03-01' AND '2024-06-30' AND amount >= 100 AND lower(product) LIKE '%gad%' GROUP BY region, product ORDER BY region IS NULL, region, product",
    );
    expect(expected.length).toBeGreaterThan(1);
    expect(asText(a.rows)).toEqual(expected);
  });

  it('pages through ~8 600 groups by a measure with keyset cursors: the pages together are the whole sorted answer', async () => {
    const spec = {
      dimensions: ['customer'],
      measures: [{ op: 'sum' as const, field: 'qty' }],
      sort: [{ by: 'sum_qty', dir: 'desc' as const }],
      limit: 999,
    };
    const whole = await query({ ...spec, limit: 10_000 });
    const seen: CellValue[][] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await query({ ...spec, ...(after ? { after } : {}) });
      seen.push(...page.rows);
      after = page.next ?? undefined;
      pages++;
    } while (after);
    expect(whole.rows.length).toBeGreaterThan(8000);
    expect(pages).toBe(Math.ceil(whole.rows.length / 999));
    expect(seen).toEqual(whole.rows);
    // Sorted by the measure, ties by customer: exactly sqlite3's order.
    const expected = sqlite3('SELECT customer, sum(qty) FROM sales GROUP BY customer ORDER BY sum(qty) DESC, customer');
    expect(asText(seen)).toEqual(expected);
  });

  it('a cursor of another version is refused (409), a forged one 400', async () => {
    const page = await query({ dimensions: ['customer'], limit: 10 });
    const other = { ...target, version: 'v2' };
    expect((await fortFailure(query({ dimensions: ['customer'], after: page.next! }, other))).code).toBe(
      'FORT_ERR_CONFLICT',
    );
    const forged = Buffer.from(JSON.stringify({ version: 'v1', keys: [1, 2, 3] })).toString('base64url');
    const err = await fortFailure(query({ dimensions: ['customer'], after: forged }));
    expect(err.code).toBe('FORT_ERR_BAD_REQUEST');
    expect(err.message).toBe('after: not a cursor of this query (its sort keys differ)');
  });

  it('names what is wrong: an unknown field, sum of text, a sort key not in the query, a name twice', async () => {
    const cases: [QuerySpecInput, string][] = [
      [{ dimensions: ['regoin'] }, 'dimensions[0]: no field "regoin" in this app'],
      [{ measures: [{ op: 'sum', field: 'region' }] }, 'measures[0]: sum needs a number field; "region" is VARCHAR'],
      [
        { dimensions: ['region'], sort: [{ by: 'qty', dir: 'asc' }] },
        'sort[0].by: "qty" is not a dimension or measure',
      ],
      [
        { selections: [{ field: 'product', range: { min: 1 } }], measures: [{ op: 'count' }] },
        'selections[0]: a range needs a number or date field; "product" is VARCHAR',
      ],
      [{ dimensions: ['region'], measures: [{ op: 'count', as: 'region' }] }, 'answer column "region" appears twice'],
    ];
    for (const [spec, why] of cases) {
      const err = await fortFailure(query(spec));
      expect(err.code).toBe('FORT_ERR_BAD_REQUEST');
      expect(err.message.startsWith(why), err.message).toBe(true);
    }
  });

  it('names and values are never SQL: a field named like an injection is unknown, a value like one matches nothing', async () => {
    const err = await fortFailure(query({ dimensions: ['region" FROM sales; DROP TABLE sales; --'] }));
    expect(err.message).toMatch(/^dimensions\[0\]: no field /);
    const a = await query({
      selections: [{ field: 'region', values: ["North' OR '1'='1"] }],
      measures: [{ op: 'count' }],
    });
    expect(a.rows).toEqual([[0]]);
    expect((await query({ measures: [{ op: 'count' }] })).rows).toEqual([[ROWS]]);
  });

  it('list boxes: possible and excluded values under the other fields, the own selection excluding nothing', async () => {
    await conn.run(
      "CREATE TABLE crafted AS SELECT * FROM (VALUES ('North', 'Widget', 1), ('North', 'Gadget', 2), ('South', 'Gadget', 3), ('East', 'Gizmo', 4), (NULL, 'Gizmo', 5)) AS t(region, product, qty)",
    );
    const crafted = { conn, schema: await readTableSchema(conn, 'crafted'), version: 'c1' };
    const values = (spec: object) => runFieldValues(crafted, fieldValuesSpecSchema.parse(spec), LIMITS);
    // product = Gadget selected: regions North and South possible, East and NULL excluded.
    const regions = await values({ field: 'region', selections: [{ field: 'product', values: ['Gadget'] }] });
    expect(regions.values).toEqual([
      { value: 'North', count: 1, state: 'possible', selected: false },
      { value: 'South', count: 1, state: 'possible', selected: false },
      { value: 'East', count: 0, state: 'excluded', selected: false },
      { value: null, count: 0, state: 'excluded', selected: false },
    ]);
    // Its own field: every product stays possible, Gadget marked selected; region North excludes Gizmo.
    const products = await values({
      field: 'product',
      selections: [
        { field: 'product', values: ['Gadget'] },
        { field: 'region', values: ['North'] },
      ],
    });
    expect(products.values).toEqual([
      { value: 'Gadget', count: 1, state: 'possible', selected: true },
      { value: 'Widget', count: 1, state: 'possible', selected: false },
      { value: 'Gizmo', count: 0, state: 'excluded', selected: false },
    ]);
    const searched = await values({ field: 'product', search: 'g' });
    expect(searched.values.map((v) => v.value)).toEqual(['Gadget', 'Gizmo', 'Widget']);
  });

  it('a query past its timeout is interrupted (FORT_ERR_QUERY_TIMEOUT) and the connection answers the next one', async () => {
    await conn.run('CREATE TABLE big AS SELECT range AS n FROM range(3000)');
    const big = { conn, schema: await readTableSchema(conn, 'big'), version: 'b1' };
    await conn.run('CREATE VIEW heavy AS SELECT a.n AS n, b.n AS m FROM big a, big b, big c');
    const heavy = { conn, schema: await readTableSchema(conn, 'heavy'), version: 'h1' };
    const started = Date.now();
    const err = await fortFailure(
      runQuery(heavy, querySpecSchema.parse({ measures: [{ op: 'sum', field: 'm' }] }), { ...LIMITS, timeoutMs: 200 }),
    );
    expect(err.code).toBe('FORT_ERR_QUERY_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await runQuery(big, querySpecSchema.parse({ measures: [{ op: 'count' }] }), LIMITS)).rows).toEqual([
      [3000],
    ]);
  });

  it('an answer past the byte budget is refused, naming the limit', async () => {
    const err = await fortFailure(
      runQuery(target, querySpecSchema.parse({ dimensions: ['customer'], limit: 10_000 }), {
        ...LIMITS,
        maxAnswerBytes: 10_000,
      }),
    );
    expect(err).toBeInstanceOf(FortError);
    expect(err.code).toBe('FORT_ERR_QUERY_TOO_LARGE');
    expect(err.message).toBe('the answer is more than 10000 bytes (ask for fewer rows or columns)');
  });

  it('a query with more groups than max_groups is refused, naming the count and the limit; every page says how many', async () => {
    const customers = sqlite3('SELECT count(DISTINCT customer) FROM sales');
    const n = Number(customers[0]![0]);
    const page = await runQuery(target, querySpecSchema.parse({ dimensions: ['customer'], limit: 10 }), LIMITS);
    expect(page.groups).toBe(n);
    expect(page.rows).toHaveLength(10);
    const err = await fortFailure(
      runQuery(target, querySpecSchema.parse({ dimensions: ['customer'], limit: 10 }), { ...LIMITS, maxGroups: n - 1 }),
    );
    expect(err.code).toBe('FORT_ERR_QUERY_TOO_LARGE');
    expect(err.message).toBe(
      `the query has ${n} groups, more than queries.max_groups (${n - 1}): select fewer rows or group by fewer fields`,
    );
  });
});
