import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { tempDir, testPki } from '../../helpers/fort.js';
import { FortError } from '../../../lib/errors.js';
import { startEngine, type Caller, type EngineProcess } from './engine-process.js';

/**
 * fort-engine as a process: trust-zone mTLS only (the agent's certificate; another member of the
 * trust zone is refused, a certificate of another CA never gets past the handshake), a CSV
 * loaded into a new immutable DuckDB version, then queries and list boxes on it.
 */

let pki: PkiPaths;
let rogue: PkiPaths;
let e: EngineProcess;
let dir: string;
let sources: string;

const call = (path: string, body: unknown, who?: Caller, method?: string) => e.call(path, body, who, method);

const CSV =
  'region,product,amount,day\n' +
  'North,Widget,10,2024-01-05\n' +
  'North,Gadget,20,2024-01-06\n' +
  'South,Gadget,5,2024-02-01\n' +
  '"Zürich, Altstadt",Gizmo,7.5,2024-03-01\n';

const load = (version: string, file = join(sources, 'sales.csv')) =>
  call('/engine/v1/apps/sales-app/versions', {
    version,
    tables: [
      {
        name: 'sales',
        connector: 'csv',
        file,
        columns: [
          { name: 'region', type: 'string' },
          { name: 'product', type: 'string' },
          { name: 'amount', type: 'number' },
          { name: 'day', type: 'date' },
        ],
      },
    ],
  });
const loadSqlite = (version: string, database: string, query = 'SELECT * FROM customers') =>
  call('/engine/v1/apps/sales-app/versions', {
    version,
    tables: [{ name: 'customers', connector: 'sqlite', database, query }],
  });
const query = (spec: unknown, version = 'v1') =>
  call(`/engine/v1/apps/sales-app/versions/${version}/tables/sales/query`, spec);

beforeAll(async () => {
  pki = await testPki();
  rogue = await testPki();
  dir = tempDir('engine');
  sources = join(dir, 'sources');
  mkdirSync(sources);
  writeFileSync(join(sources, 'sales.csv'), CSV);
  writeFileSync(join(dir, 'outside.csv'), CSV);
  for (const db of [join(sources, 'crm.sqlite'), join(dir, 'outside.sqlite')])
    execFileSync('sqlite3', [
      db,
      "CREATE TABLE customers(id INTEGER, name TEXT, since DATE); INSERT INTO customers VALUES (1, 'Ärzte AG', '2020-05-01'), (2, 'Bolt', NULL), (3, NULL, '2021-01-01');",
    ]);
  e = await startEngine({ pki, dir, sources });
});
afterAll(async () => {
  await e?.stop();
});

describe('fort-engine over trust-zone mTLS', () => {
  it('loads a CSV into version v1 (a file of its own), then answers a group-by with the version id', async () => {
    const loaded = await load('v1');
    expect(loaded).toEqual({
      status: 201,
      body: { app: 'sales-app', version: 'v1', tables: [{ name: 'sales', rows: 4 }] },
    });
    expect(readdirSync(join(dir, 'data', 'apps', 'sales-app'))).toEqual(['v1.duckdb']);
    const a = await query({
      dimensions: ['region'],
      measures: [{ op: 'sum', field: 'amount' }, { op: 'count' }],
      sort: [{ by: 'sum_amount', dir: 'desc' }],
    });
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({
      version: 'v1',
      rows: [
        ['North', 30, 2],
        ['Zürich, Altstadt', 7.5, 1],
        ['South', 5, 1],
      ],
      next: null,
    });
  });

  it('list boxes: regions possible and excluded under a product selection', async () => {
    const a = await call('/engine/v1/apps/sales-app/versions/v1/tables/sales/fields', {
      field: 'region',
      selections: [{ field: 'product', values: ['Gadget'] }],
    });
    expect(a.status).toBe(200);
    expect(a.body['values']).toEqual([
      { value: 'North', count: 1, state: 'possible', selected: false },
      { value: 'South', count: 1, state: 'possible', selected: false },
      { value: 'Zürich, Altstadt', count: 0, state: 'excluded', selected: false },
    ]);
  });

  it('bad input: an unknown field 400 naming it, a bad spec 400, an unknown version 404, a version id twice 409', async () => {
    const unknown = await query({ dimensions: ['regoin'] });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({ code: 'FORT_ERR_BAD_REQUEST' });
    expect(String(unknown.body['detail'])).toMatch(/^dimensions\[0\]: no field "regoin"/);
    const spec = await query({ limit: 20_000, dimensions: ['region'] });
    expect(spec.status).toBe(400);
    expect(String(spec.body['detail'])).toMatch(/^limit: /);
    expect((await query({ dimensions: ['region'] }, 'v9')).status).toBe(404);
    expect((await query({ dimensions: ['region'] }, '.hidden')).status).toBe(400);
    const again = await load('v1');
    expect(again.status).toBe(409);
  });

  it('reads sources only inside data.source_dirs', async () => {
    const outside = await load('v2', join(dir, 'outside.csv'));
    expect(outside.status).toBe(422);
    expect(outside.body).toMatchObject({ code: 'FORT_ERR_RELOAD_SOURCE' });
    expect(String(outside.body['detail'])).toContain("not inside the engine's data.source_dirs");
    const sqliteOutside = await loadSqlite('v2', join(dir, 'outside.sqlite'));
    expect(sqliteOutside.status).toBe(422);
    expect(String(sqliteOutside.body['detail'])).toBe(
      `${join(dir, 'outside.sqlite')}: not inside the engine's data.source_dirs`,
    );
    const relative = await loadSqlite('v2', 'sources/crm.sqlite');
    expect(relative.status).toBe(400);
    expect(String(relative.body['detail'])).toMatch(/database: expected an absolute path/);
    expect(readdirSync(join(dir, 'data', 'apps', 'sales-app')).filter((f) => f.startsWith('v2'))).toEqual([]);
  });

  it('loads a SQLite SELECT beside a CSV into one version, typed from the declared SQLite types', async () => {
    const loaded = await call('/engine/v1/apps/sales-app/versions', {
      version: 'mixed',
      tables: [
        {
          name: 'sales',
          connector: 'csv',
          file: join(sources, 'sales.csv'),
          columns: [
            { name: 'region', type: 'string' },
            { name: 'product', type: 'string' },
            { name: 'amount', type: 'number' },
            { name: 'day', type: 'date' },
          ],
        },
        {
          name: 'customers',
          connector: 'sqlite',
          database: join(sources, 'crm.sqlite'),
          query: 'SELECT * FROM customers',
        },
      ],
    });
    expect(loaded).toEqual({
      status: 201,
      body: {
        app: 'sales-app',
        version: 'mixed',
        tables: [
          { name: 'sales', rows: 4 },
          { name: 'customers', rows: 3 },
        ],
      },
    });
    const a = await call('/engine/v1/apps/sales-app/versions/mixed/tables/customers/query', {
      dimensions: ['name', 'since'],
      measures: [{ op: 'sum', field: 'id' }],
      sort: [{ by: 'sum_id' }],
    });
    expect(a.body).toMatchObject({
      version: 'mixed',
      rows: [
        ['Ärzte AG', '2020-05-01', 1],
        ['Bolt', null, 2],
        [null, '2021-01-01', 3],
      ],
    });
    const refused = await loadSqlite('v3', join(sources, 'crm.sqlite'), 'DELETE FROM customers');
    expect(refused).toMatchObject({
      status: 422,
      body: {
        code: 'FORT_ERR_RELOAD_SOURCE',
        detail: 'customers: expected a SELECT (or WITH ... SELECT) statement, got DELETE',
      },
    });
  });

  it('refuses a trust-zone member that is not the agent (403), and certificates of another CA at the handshake', async () => {
    const fortctl = await call(
      '/engine/v1/health',
      undefined,
      {
        cert: pki.trustZone.fortctlCert,
        key: pki.trustZone.fortctlKey,
      },
      'GET',
    );
    expect(fortctl.status).toBe(403);
    expect(String(fortctl.body['detail'])).toBe('trust-zone member fortctl may not call the engine');
    // A rogue installation's agent: its CA is not ours.
    await expect(
      call('/engine/v1/health', undefined, { cert: rogue.trustZone.agentCert, key: rogue.trustZone.agentKey }, 'GET'),
    ).rejects.toThrow();
    // The client zone's certificate (another CA): never in the trust zone.
    await expect(
      call(
        '/engine/v1/health',
        undefined,
        { cert: pki.clientZone.clientApiCert, key: pki.clientZone.clientApiKey },
        'GET',
      ),
    ).rejects.toThrow();
    // And the engine is a rogue to a client that trusts another root.
    await expect(
      call(
        '/engine/v1/health',
        undefined,
        { cert: pki.trustZone.agentCert, key: pki.trustZone.agentKey, ca: rogue.trustZone.ca },
        'GET',
      ),
    ).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    const health = await call('/engine/v1/health', undefined, undefined, 'GET');
    expect(health).toMatchObject({ status: 200, body: { status: 'healthy', openVersions: 2 } });
  });

  it('keeps answers per (version, table, normalised query): the same question again is a hit with the same answer', async () => {
    const cache = async () =>
      (await call('/engine/v1/health', undefined, undefined, 'GET')).body['cache'] as { hits: number; misses: number };
    const spec = { dimensions: ['region'], measures: [{ op: 'count' }] };
    const before = await cache();
    const first = await query(spec);
    // The same query with its defaults spelled out is the same normalised query.
    const again = await query({ ...spec, selections: [], sort: [], limit: 100 });
    const after = await cache();
    expect(again).toEqual(first);
    expect(after.misses - before.misses).toBe(1);
    expect(after.hits - before.hits).toBe(1);
    await query({ ...spec, limit: 99 });
    expect((await cache()).misses - after.misses).toBe(1);
  });

  it('loads rows the agent streams (an HTTP source) beside a CSV, in the agent client’s own x-ndjson form', async () => {
    const client = e.agentClient();
    try {
      const rates = { name: 'rates', type: 'number' };
      const columns = [
        { name: 'code', type: 'string' },
        rates,
        { name: 'on', type: 'date' },
        { name: 'ok', type: 'boolean' },
      ];
      const rows = [
        ['EUR', 1, '2024-01-05', 1],
        ['CHF', 0.95, null, 0],
        ['Zürich "Ost"\nline', null, '2024-02-29', null],
      ];
      // Two batches: a stream is the rows of every batch, in order.
      const batches = async function* () {
        yield rows.slice(0, 2);
        yield rows.slice(2);
      };
      const csv = {
        name: 'sales',
        connector: 'csv' as const,
        file: join(sources, 'sales.csv'),
        delimiter: ',',
        quote: '"',
        header: true,
        columns: [
          { name: 'region', type: 'string' },
          { name: 'product', type: 'string' },
          { name: 'amount', type: 'number' },
          { name: 'day', type: 'date' },
        ],
      };
      const loaded = await client.load(
        'rates-app',
        'r1',
        [csv, { name: 'rates', connector: 'rows', columns, batches }],
        10_000,
        new AbortController().signal,
      );
      expect(loaded).toEqual({
        app: 'rates-app',
        version: 'r1',
        tables: [
          { name: 'sales', rows: 4 },
          { name: 'rates', rows: 3 },
        ],
      });
      const a = await call('/engine/v1/apps/rates-app/versions/r1/tables/rates/rows', { limit: 10 });
      expect(a.body).toMatchObject({
        rows: [...rows.map((r) => [r[0], r[1], r[2], r[3] === null ? null : r[3] === 1])],
      });

      // A value of the wrong type: refused naming the table, the row and the column, never the value.
      const bad = client.load(
        'rates-app',
        'r2',
        [
          {
            name: 'rates',
            connector: 'rows',
            columns,
            batches: async function* () {
              yield [['EUR', 'one', null, 1]];
            },
          },
        ],
        10_000,
        new AbortController().signal,
      );
      await expect(bad).rejects.toMatchObject({
        code: 'FORT_ERR_RELOAD_SOURCE',
        message: expect.stringMatching(/^rates: row 1: column "rates" is not a valid DOUBLE$/),
      });
      // The source failing mid-stream (the agent's fetch broke): the agent's own error, and no version.
      const cut = client.load(
        'rates-app',
        'r3',
        [
          csv,
          {
            name: 'rates',
            connector: 'rows',
            columns,
            batches: async function* () {
              yield rows;
              throw new FortError('FORT_ERR_RELOAD_SOURCE', 'table "rates": GET example.test failed (ECONNRESET)');
            },
          },
        ],
        10_000,
        new AbortController().signal,
      );
      await expect(cut).rejects.toMatchObject({
        code: 'FORT_ERR_RELOAD_SOURCE',
        message: expect.stringMatching(/ECONNRESET/),
      });
      await e.logged((l) => l.version === 'r3' && l.msg === 'load cancelled');
      expect(await client.versions('rates-app')).toEqual(['r1']);
      expect(readdirSync(join(dir, 'data', 'apps', 'rates-app')).sort()).toEqual(['r1.duckdb']);
    } finally {
      client.close();
    }
  });
});
