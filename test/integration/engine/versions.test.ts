import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, testPki } from '../../helpers/fort.js';
import { startEngine, type EngineProcess } from './engine-process.js';

/**
 * The life of an app version in fort-engine as a process: a load whose request the caller
 * closes is cancelled (nothing left, the loads behind it run), a version deleted, a version's
 * tables described.
 */

let e: EngineProcess;
let dir: string;
let sources: string;
let appDir: string;

const CSV = 'region,product,amount,day\nNorth,Widget,10,2024-01-05\nSouth,Gadget,5,2024-02-01\n';
const COLUMNS = [
  { name: 'region', type: 'string' },
  { name: 'product', type: 'string' },
  { name: 'amount', type: 'number' },
  { name: 'day', type: 'date' },
];
const loadBody = (version: string, file = join(sources, 'sales.csv')) => ({
  version,
  tables: [{ name: 'sales', connector: 'csv', file, columns: COLUMNS }],
});
const LOADS = '/engine/v1/apps/sales-app/versions';

/**
 * A streamed load (rows the agent sends) whose end never comes: the request line and rows, then
 * nothing. It can only end by being cancelled, so the test cannot pass by a load that finished
 * before the abort reached it.
 */
function endlessLoad(version: string) {
  const load = e.sendStream(LOADS);
  load.req.write(`${JSON.stringify({ version, tables: [{ name: 'sales', connector: 'rows', columns: COLUMNS }] })}\n`);
  load.req.write('["North","Widget",10.5,"2024-01-05"]\n'.repeat(5000));
  return load;
}

beforeAll(async () => {
  const pki = await testPki();
  dir = tempDir('engine-versions');
  sources = join(dir, 'sources');
  appDir = join(dir, 'data', 'apps', 'sales-app');
  mkdirSync(sources);
  writeFileSync(join(sources, 'sales.csv'), CSV);
  // No row cap within reach: the endless load below must not end by hitting it.
  e = await startEngine({ pki, dir, sources, maxRows: 2_000_000_000 });
});
afterAll(async () => {
  await e?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a load whose request is closed', () => {
  it('is cancelled: nothing is left of it, the load queued behind it runs, and its id can be loaded again', async () => {
    const from = e.engine.stdout.length;
    const cancelled = endlessLoad('big');
    const failed = cancelled.answer.then(
      () => 'answered',
      (err: Error) => err.message,
    );
    await e.logged((l) => l['msg'] === 'load started' && l['version'] === 'big', from);
    // Queued behind the running load before the abort, so that it surely waits its turn.
    const behind = e.send('POST', LOADS, loadBody('behind')).answer;
    await e.logged((l) => l['msg'] === 'load queued' && l['version'] === 'behind', from);
    cancelled.req.destroy();
    expect(await failed).toMatch(/socket hang up|ECONNRESET|aborted/);
    await e.logged((l) => l['msg'] === 'load cancelled' && l['version'] === 'big', from);
    expect(await behind).toMatchObject({
      status: 201,
      body: { version: 'behind', tables: [{ name: 'sales', rows: 2 }] },
    });
    expect(
      e
        .lines(from)
        .filter((l) => l['version'] === 'big')
        .map((l) => l['msg']),
    ).toEqual(['load started', 'load cancelled']);
    expect(readdirSync(appDir).filter((f) => f.startsWith('big.'))).toEqual([]);
    const again = await e.call(LOADS, loadBody('big'));
    expect(again).toMatchObject({ status: 201, body: { version: 'big', tables: [{ name: 'sales', rows: 2 }] } });
    expect(readdirSync(appDir).filter((f) => f.startsWith('big.'))).toEqual(['big.duckdb']);
  });
});

describe('sources the engine will not read', () => {
  it('a FIFO (or any file that is not regular) is refused at once, naming it', async () => {
    const fifo = join(sources, 'pipe.csv');
    execFileSync('mkfifo', [fifo]);
    expect(await e.call(LOADS, loadBody('fifo', fifo))).toMatchObject({
      status: 422,
      body: { code: 'FORT_ERR_RELOAD_SOURCE', detail: `${fifo}: not a regular file` },
    });
  });
});

describe('deleting a version', () => {
  it('204 and its file gone (opened or not); then 404, and its id free for a new load', async () => {
    expect(await e.call(LOADS, loadBody('old'))).toMatchObject({ status: 201 });
    const q = (v: string) =>
      e.call(`/engine/v1/apps/sales-app/versions/${v}/tables/sales/query`, { dimensions: ['region'] });
    expect(await q('old')).toMatchObject({ status: 200, body: { version: 'old' } });
    const from = e.engine.stdout.length;
    expect(await e.call('/engine/v1/apps/sales-app/versions/old', undefined, undefined, 'DELETE')).toEqual({
      status: 204,
      body: {},
    });
    await e.logged((l) => l['msg'] === 'app version deleted' && l['version'] === 'old', from);
    expect(readdirSync(appDir).filter((f) => f.startsWith('old.'))).toEqual([]);
    expect(await q('old')).toMatchObject({ status: 404, body: { code: 'FORT_ERR_NOT_FOUND' } });
    expect(await e.call('/engine/v1/apps/sales-app/versions/old', undefined, undefined, 'DELETE')).toMatchObject({
      status: 404,
      body: { code: 'FORT_ERR_NOT_FOUND', detail: 'no version "old" of app "sales-app"' },
    });
    expect(await e.call('/engine/v1/apps/sales-app/versions/.old', undefined, undefined, 'DELETE')).toMatchObject({
      status: 400,
    });
    expect(await e.call(LOADS, loadBody('old'))).toMatchObject({ status: 201 });
    expect(await q('old')).toMatchObject({ status: 200, body: { version: 'old' } });
  });
});

describe('the tables of a version', () => {
  it('name, rows and fields (DuckDB type and kind) of each table; 404 for an unknown version', async () => {
    expect(await e.call(LOADS, loadBody('described'))).toMatchObject({ status: 201 });
    const tables = await e.call('/engine/v1/apps/sales-app/versions/described/tables', undefined, undefined, 'GET');
    expect(tables).toEqual({
      status: 200,
      body: {
        version: 'described',
        tables: [
          {
            name: 'sales',
            rows: 2,
            fields: [
              { name: 'region', type: 'VARCHAR', kind: 'text' },
              { name: 'product', type: 'VARCHAR', kind: 'text' },
              { name: 'amount', type: 'DOUBLE', kind: 'number' },
              { name: 'day', type: 'DATE', kind: 'date' },
            ],
          },
        ],
      },
    });
    expect(await e.call('/engine/v1/apps/sales-app/versions/nope/tables', undefined, undefined, 'GET')).toMatchObject({
      status: 404,
      body: { code: 'FORT_ERR_NOT_FOUND' },
    });
    expect(await e.call('/engine/v1/apps/sales-app/versions/n.pe/tables', undefined, undefined, 'GET')).toMatchObject({
      status: 400,
      body: { code: 'FORT_ERR_BAD_REQUEST' },
    });
  });
});
