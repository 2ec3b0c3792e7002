import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { PolicyInput } from '../../../dev-cloud/cloud-api/policy.js';
import { eventually, testPki } from '../../helpers/fort.js';
import { startEngineStack, type EngineStack } from '../../helpers/engine-stack.js';
import { createEngineClient } from '../../../agent/engine/client.js';
import { loadTlsMaterial } from '../../../lib/tls.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { httpsCall } from '../../helpers/https.js';

/**
 * The client API's queries, computed by the real fort-engine on a version it loaded from a real
 * CSV (agent ↔ engine over trust-zone mTLS), checked against the sqlite3 CLI on the same file:
 * every measure and selection kind, nulls, dates, unicode, 10 000 distinct values, keyset
 * paging, list boxes; and the refusals (403 audited, 400 naming the field).
 */

const run = promisify(execFile);
const FORT = 'fort-dev-1';
const POLICY: PolicyInput = {
  decision_ttl_seconds: 600,
  tenants: {
    t1: {
      forts: [FORT],
      users: { alice: { groups: ['analysts'] }, bob: { groups: ['others'] } },
      spaces: { sales: { analysts: ['app.list', 'app.read', 'app.reload'] } },
      apps: { orders: { space: 'sales' } },
    },
  },
};
const REGIONS = ['Zürich', 'Nord', '東京', 'São Paulo', 'Ouest'];
const ROWS = 20_000;

/** Deterministic orders: 10 000 customers, every 7th amount empty (null), dates over 2026; Nord sells only p3. */
function ordersCsv(): string {
  const lines = ['id,region,product,customer,day,amount'];
  for (let i = 0; i < ROWS; i++) {
    const region = REGIONS[(i * 7) % REGIONS.length]!;
    const product = region === 'Nord' ? 'p3' : `p${i % 3}`;
    const day = new Date(Date.UTC(2026, 0, 1) + (i % 365) * 86_400_000).toISOString().slice(0, 10);
    const amount = i % 7 === 0 ? '' : ((i * 37) % 10_000) / 100;
    lines.push(`${i},${region},${product},c-${String(i % 10_000).padStart(5, '0')},${day},${amount}`);
  }
  return `${lines.join('\n')}\n`;
}

const APP_TOML = (file: string) => `id = "orders"
name = "Orders"
space = "sales"
[[tables]]
name = "orders"
connector = "csv"
path = "${file}"
columns = [ { name = "id", type = "integer" }, { name = "region", type = "string" }, { name = "product", type = "string" }, { name = "customer", type = "string" }, { name = "day", type = "date" }, { name = "amount", type = "number" } ]
`;

type Cell = string | number | boolean | null;
interface QueryAnswer {
  version: string;
  columns: { name: string }[];
  rows: Cell[][];
  next: string | null;
}

const round = (v: Cell) => (typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : v);

describe('queries computed by fort-engine, through the client API', () => {
  let stack: EngineStack;
  let pki: PkiPaths;
  let ca: Buffer;
  let alice: string;
  let csv: string;

  /** The same question asked of sqlite3 on the CSV (amount '' → NULL, as the fort loads it). */
  const sqlite = async (sql: string): Promise<Cell[][]> => {
    const { stdout } = await run('sqlite3', [
      '-json',
      ':memory:',
      '-cmd',
      'CREATE TABLE raw (id INTEGER, region TEXT, product TEXT, customer TEXT, day TEXT, amount TEXT)',
      '-cmd',
      `.import --csv --skip 1 ${csv} raw`,
      '-cmd',
      "CREATE VIEW orders AS SELECT id, region, product, customer, day, CAST(NULLIF(amount, '') AS REAL) AS amount FROM raw",
      sql,
    ]);
    const rows = stdout.trim() ? (JSON.parse(stdout) as Record<string, Cell>[]) : [];
    return rows.map((r) => Object.values(r).map(round));
  };
  const call = (method: string, path: string, token: string, json?: unknown) =>
    httpsCall(stack.clientApi, ca, method, path, {
      headers: { authorization: `Bearer ${token}` },
      ...(json === undefined ? {} : { json }),
    });
  const query = async (spec: object) => {
    const res = await call('POST', '/api/v1/apps/orders/query', alice, spec);
    expect(res.status, res.body).toBe(200);
    return res.json() as QueryAnswer;
  };
  const rowsOf = (a: QueryAnswer) => a.rows.map((r) => r.map(round));

  beforeAll(async () => {
    pki = await testPki();
    stack = await startEngineStack(pki, {
      fortId: FORT,
      policy: POLICY,
      prepare: (inst) => {
        csv = join(inst.layout.sourcesDir!, 'orders.csv');
        writeFileSync(csv, ordersCsv());
      },
    });
    ca = readFileSync(pki.clientZone.ca);
    await stack.loadApp(APP_TOML('orders.csv'), 'orders');
    alice = await stack.dev.login('alice', 't1');
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('every measure by a dimension under a values selection equals sqlite3 on the source', async () => {
    const a = await query({
      selections: [{ field: 'product', values: ['p1', 'p2'] }],
      dimensions: ['region'],
      measures: [
        { op: 'sum', field: 'amount' },
        { op: 'count' },
        { op: 'count_distinct', field: 'customer' },
        { op: 'avg', field: 'amount' },
        { op: 'min', field: 'day' },
        { op: 'max', field: 'amount' },
      ],
      sort: [{ by: 'region' }],
    });
    expect(a.columns.map((c) => c.name)).toEqual([
      'region',
      'sum_amount',
      'count',
      'count_distinct_customer',
      'avg_amount',
      'min_day',
      'max_amount',
    ]);
    expect(a.version).toMatch(/^[0-9a-f-]+-1$/);
    const expected = await sqlite(
      "SELECT region, SUM(amount), COUNT(*), COUNT(DISTINCT customer), AVG(amount), MIN(day), MAX(amount) FROM orders WHERE product IN ('p1','p2') GROUP BY region ORDER BY region",
    );
    expect(rowsOf(a)).toEqual(expected);
    // Nord sells only p3: no group for it, and the unicode names came through intact.
    expect(a.rows.map((r) => r[0])).toEqual(expect.arrayContaining(['Zürich', '東京', 'São Paulo']));
    expect(a.rows.map((r) => r[0])).not.toContain('Nord');
  });

  it('date and number ranges and a text search select the same rows as sqlite3', async () => {
    const a = await query({
      selections: [
        { field: 'day', range: { min: '2026-03-01', max: '2026-03-31' } },
        { field: 'amount', range: { min: 10, max: 50 } },
        { field: 'customer', contains: '9' },
      ],
      dimensions: ['product'],
      measures: [{ op: 'count' }, { op: 'sum', field: 'amount' }],
      sort: [{ by: 'product' }],
    });
    const expected = await sqlite(
      "SELECT product, COUNT(*), SUM(amount) FROM orders WHERE day BETWEEN '2026-03-01' AND '2026-03-31' AND amount BETWEEN 10 AND 50 AND customer LIKE '%9%' GROUP BY product ORDER BY product",
    );
    expect(expected.length).toBeGreaterThan(0);
    expect(rowsOf(a)).toEqual(expected);
  });

  it('nulls are a group of their own and are not counted by count distinct', async () => {
    const a = await query({
      selections: [{ field: 'region', values: ['Ouest'] }],
      dimensions: ['amount'],
      measures: [{ op: 'count' }],
      sort: [{ by: 'count', dir: 'desc' }, { by: 'amount' }],
      limit: 3,
    });
    const nulls = await sqlite("SELECT COUNT(*) FROM orders WHERE region = 'Ouest' AND amount IS NULL");
    expect(a.rows[0]).toEqual([null, nulls[0]![0]]);
  });

  it('keyset pages over 10 000 customers add up to the whole answer, in order, with no repeat', async () => {
    const seen: Cell[][] = [];
    let after: string | null | undefined;
    let pages = 0;
    do {
      const a = await query({
        dimensions: ['customer'],
        measures: [{ op: 'count' }],
        sort: [{ by: 'customer', dir: 'desc' }],
        limit: 3000,
        ...(after ? { after } : {}),
      });
      seen.push(...rowsOf(a));
      after = a.next;
      pages++;
    } while (after);
    expect(pages).toBe(4);
    expect(seen).toEqual(
      await sqlite('SELECT customer, COUNT(*) FROM orders GROUP BY customer ORDER BY customer DESC'),
    );
  });

  it("a list box: values possible under the other fields' selections, excluded otherwise, own selection marked", async () => {
    const selections = JSON.stringify([
      { field: 'product', values: ['p1'] },
      { field: 'region', values: ['Zürich'] },
    ]);
    const res = await call(
      'GET',
      `/api/v1/apps/orders/fields/region/values?selections=${encodeURIComponent(selections)}`,
      alice,
    );
    expect(res.status, res.body).toBe(200);
    const body = res.json() as { values: { value: string; count: number; state: string; selected: boolean }[] };
    const expected = await sqlite("SELECT region, COUNT(*) FROM orders WHERE product = 'p1' GROUP BY region");
    const byRegion = new Map(body.values.map((v) => [v.value, v]));
    expect(byRegion.size).toBe(REGIONS.length);
    for (const [region, n] of expected)
      expect(byRegion.get(region as string)).toEqual({
        value: region,
        count: n,
        state: 'possible',
        selected: region === 'Zürich',
      });
    expect(byRegion.get('Nord')).toEqual({ value: 'Nord', count: 0, state: 'excluded', selected: false });
  });

  it('rows under a selection, sorted with nulls last, in keyset pages equal sqlite3 (no OFFSET)', async () => {
    const seen: Cell[][] = [];
    let after: string | null = null;
    let total: number | undefined;
    do {
      const params = new URLSearchParams({
        limit: '700',
        sort: 'amount:desc',
        fields: 'id,customer,amount',
        selections: JSON.stringify([{ field: 'region', values: ['東京', 'Nord'] }]),
        ...(after ? { after } : {}),
      });
      const res = await call('GET', `/api/v1/apps/orders/tables/orders/rows?${params.toString()}`, alice);
      expect(res.status, res.body).toBe(200);
      const page = res.json() as { columns: string[]; rows: Cell[][]; total: number; next: string | null };
      expect(page.columns).toEqual(['id', 'customer', 'amount']);
      seen.push(...page.rows.map((r) => r.map(round)));
      total = page.total;
      after = page.next;
    } while (after);
    const expected = await sqlite(
      "SELECT id, customer, amount FROM orders WHERE region IN ('東京', 'Nord') ORDER BY amount DESC NULLS LAST, id",
    );
    expect(total).toBe(expected.length);
    expect(seen).toEqual(expected);
  });

  it('the schema names the version, its table and typed fields', async () => {
    const res = await call('GET', '/api/v1/apps/orders/schema', alice);
    expect(res.status, res.body).toBe(200);
    const body = res.json() as { tables: { name: string; rows: number; fields: { name: string; kind: string }[] }[] };
    expect(body.tables).toHaveLength(1);
    expect(body.tables[0]!.rows).toBe(ROWS);
    expect(body.tables[0]!.fields.map((f) => [f.name, f.kind])).toEqual([
      ['id', 'integer'],
      ['region', 'text'],
      ['product', 'text'],
      ['customer', 'text'],
      ['day', 'date'],
      ['amount', 'number'],
    ]);
  });

  it('a user without app.read gets 403 and an audit entry; an unknown field gets 400 naming it', async () => {
    const since = new Date(Date.now() - 1000);
    const bob = await stack.dev.login('bob', 't1');
    const denied = await call('POST', '/api/v1/apps/orders/query', bob, { dimensions: ['region'] });
    expect(denied.status).toBe(403);
    const audit = await eventually(
      async () =>
        (await stack.admin.audit(since)).body.entries.find(
          (e) => e.actor === 'bob' && e.action === 'app.read' && e.target === 'orders',
        ),
      10_000,
      "bob's denied read in the audit trail",
    );
    expect(audit.detail).toMatchObject({ decision: 'deny' });

    const bad = await call('POST', '/api/v1/apps/orders/query', alice, { dimensions: ['regoin'] });
    expect(bad.status).toBe(400);
    expect((bad.json() as { detail: string }).detail).toMatch(/regoin/);
  });

  it('a version the engine holds that no reload committed (the agent died before its commit) is deleted at the next reload', async () => {
    const engine = createEngineClient({
      url: `https://127.0.0.1:${stack.inst.layout.ports.engine}`,
      tls: loadTlsMaterial({ ca: pki.trustZone.ca, cert: pki.trustZone.agentCert, key: pki.trustZone.agentKey }),
      serverName: 'engine',
      queryTimeoutMs: 30_000,
      maxAnswerBytes: 1 << 20,
    });
    try {
      // What a load the agent did not live to commit leaves: a complete version no row names.
      const table = { name: 'orders', connector: 'csv' as const, file: csv, delimiter: ',', quote: '"', header: true };
      const columns = [
        { name: 'id', type: 'integer' },
        { name: 'region', type: 'string' },
        { name: 'product', type: 'string' },
        { name: 'customer', type: 'string' },
        { name: 'day', type: 'date' },
        { name: 'amount', type: 'number' },
      ];
      await engine.load('orders', 'orphan-1', [{ ...table, columns }], 60_000, new AbortController().signal);
      expect(await engine.versions('orders')).toContain('orphan-1');
      const before = (await stack.admin.reloads({ app: 'orders' })).body.reloads.length;
      await stack.admin.startReload('orders');
      await eventually(
        async () => {
          const r = (await stack.admin.reloads({ app: 'orders' })).body.reloads;
          return r.length > before && r.every((x) => x.state === 'succeeded') ? r : undefined;
        },
        60_000,
        'the second reload of orders',
      );
      const left = await eventually(
        async () => {
          const v = await engine.versions('orders');
          return v.includes('orphan-1') ? undefined : v;
        },
        10_000,
        'the orphan version deleted',
      );
      // What the agent's rows name is all that is left (two reloads, keep_versions 3).
      expect(left).toHaveLength(2);
    } finally {
      engine.close();
    }
  });
});
