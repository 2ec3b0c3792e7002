import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DuckDBInstance } from '@duckdb/node-api';
import { reservePort } from '../../scripts/port-reservation.js';
import type { Supervised } from '../../scripts/supervisor/process.js';
import { nodeArgsFromUnit } from '../../scripts/supervisor/unit-file.js';
import type { Benchmark, BenchContext } from './benchmark.js';
import { COLUMNS, ROWS, csvFile } from './csv-load.js';
import { maxIdleRssMb, median, peakRssMb, percentile, round } from './measure.js';
import { clientApiQueryTimes } from './engine-client-api.js';

/**
 * fort-engine benchmarks: the real engine process (dist/, the unit's node flags) over
 * trust-zone mTLS with the agent's certificate, the 1 M-row CSV of csv-load loaded into a
 * DuckDB version through its API. Queries are specs (no cache exists yet, so every one is
 * computed). engine-query-p99 measures the whole path users take (client API → engine).
 */

const SQLITE3 = '/usr/bin/sqlite3';
const TYPES: Record<string, string> = {
  integer: 'INTEGER',
  number: 'REAL',
  string: 'TEXT',
  boolean: 'TEXT',
  date: 'TEXT',
};

interface Rig {
  engine: Supervised;
  post(path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown>; ms: number }>;
  close(): Promise<void>;
}

async function startEngine(ctx: BenchContext, csv: string): Promise<Rig> {
  const dir = join(ctx.tmp, 'engine');
  const port = await reservePort();
  const config = join(dir, `engine-${port.port}.toml`);
  mkdirSync(dir, { recursive: true });
  const { pki } = ctx;
  writeFileSync(
    config,
    `[server]\nport = ${port.port}\n[server.tls]\nca = "${pki.trustZone.ca}"\ncert = "${pki.trustZone.engineCert}"\nkey = "${pki.trustZone.engineKey}"\n` +
      `[data]\ndir = "${join(dir, `data-${port.port}`)}"\nsource_dirs = ["${dirname(csv)}"]\n[queries]\ncache_mib = 0\n[log]\nlevel = "warn"\n`,
  );
  const engine = await ctx.scope.start({
    name: 'engine',
    script: join(ctx.dist, 'engine/main.js'),
    nodeArgs: nodeArgsFromUnit(join(ctx.dist, '..', 'systemd', 'fort-engine.service')),
    args: ['--config', config],
  });
  await engine.waitReady(30_000);
  const agent = new Agent({
    ca: readFileSync(pki.trustZone.ca),
    cert: readFileSync(pki.trustZone.agentCert),
    key: readFileSync(pki.trustZone.agentKey),
    keepAlive: true,
    maxSockets: 1,
  });
  const post = (path: string, body: unknown) =>
    new Promise<{ status: number; body: Record<string, unknown>; ms: number }>((resolve, reject) => {
      const t0 = performance.now();
      const payload = JSON.stringify(body);
      const req = request(
        `https://127.0.0.1:${port.port}${path}`,
        { method: 'POST', agent, headers: { 'content-type': 'application/json' }, timeout: 600_000 },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: JSON.parse(text) as Record<string, unknown>,
              ms: performance.now() - t0,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  return {
    engine,
    post,
    async close() {
      agent.destroy();
      await ctx.scope.stop(engine);
      port.release();
    },
  };
}

/** The engine started on the bench CSV's directory for `f`, stopped however `f` ends. */
async function withEngine<T>(ctx: BenchContext, f: (rig: Rig, csv: string) => Promise<T>): Promise<T> {
  const csv = await csvFile(ctx);
  const rig = await startEngine(ctx, csv);
  try {
    return await f(rig, csv);
  } finally {
    await rig.close();
  }
}

let versions = 0;
/** Loads the CSV as a new version; its time on the wall clock of the request. */
async function load(rig: Rig, csv: string): Promise<{ version: string; ms: number }> {
  const version = `v${++versions}`;
  const r = await rig.post('/engine/v1/apps/bench/versions', {
    version,
    tables: [{ name: 'orders', connector: 'csv', file: csv, columns: COLUMNS }],
  });
  if (r.status !== 201) throw new Error(`bench: the engine refused the load: ${JSON.stringify(r.body)}`);
  const rows = (r.body['tables'] as { rows: number }[])[0]!.rows;
  if (rows !== ROWS) throw new Error(`bench: the engine loaded ${rows} rows, expected ${ROWS}`);
  return { version, ms: r.ms };
}

/** The queries compared, as specs and as the SQL sqlite3 runs for the same answer. */
const QUERIES = [
  {
    name: 'group-by with a selection',
    spec: {
      selections: [{ field: 'region', values: ['north', 'south', 'Île-de-France'] }],
      dimensions: ['region'],
      measures: [{ op: 'sum', field: 'amount' }, { op: 'count' }],
    },
    sql: "SELECT region, sum(amount), count(*) FROM orders WHERE region IN ('north', 'south', 'Île-de-France') GROUP BY region ORDER BY region",
  },
  {
    name: 'top 100 of 9 973 customers',
    spec: {
      dimensions: ['customer'],
      measures: [{ op: 'sum', field: 'quantity' }],
      sort: [{ by: 'sum_quantity', dir: 'desc' }],
      limit: 100,
    },
    sql: 'SELECT customer, sum(quantity) AS q FROM orders GROUP BY customer ORDER BY q DESC, customer LIMIT 100',
  },
  {
    name: 'date range, distinct count',
    spec: {
      selections: [{ field: 'day', range: { min: '2015-01-01', max: '2018-12-31' } }],
      dimensions: ['paid'],
      measures: [
        { op: 'avg', field: 'unit_price' },
        { op: 'count_distinct', field: 'customer' },
      ],
    },
    sql: "SELECT paid, avg(unit_price), count(DISTINCT customer) FROM orders WHERE day BETWEEN '2015-01-01' AND '2018-12-31' GROUP BY paid ORDER BY paid",
  },
  {
    name: 'text search',
    spec: { selections: [{ field: 'note', contains: 'rush' }], measures: [{ op: 'count' }] },
    sql: "SELECT count(*) FROM orders WHERE lower(note) LIKE '%rush%'",
  },
] as const;

const queryPath = (version: string) => `/engine/v1/apps/bench/versions/${version}/tables/orders/query`;

/** The same data in SQLite, typed columns, for the sqlite3 CLI (what SQLite-based serving gives). */
function sqliteCopy(ctx: BenchContext, csv: string): string {
  const db = join(ctx.tmp, 'engine', 'orders.sqlite');
  if (existsSync(db)) return db;
  mkdirSync(dirname(db), { recursive: true });
  const create = `CREATE TABLE orders(${COLUMNS.map((c) => `${c.name} ${TYPES[c.type]}`).join(', ')});`;
  const r = spawnSync(SQLITE3, [db, create, '.mode csv', `.import --skip 1 ${csv} orders`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench: sqlite3 import failed: ${r.stderr}`);
  return db;
}

/** The sqlite3 CLI running `sql`: its whole process, spawn to exit (start-up is a few ms). */
function sqliteMs(db: string, sql: string): number {
  const t0 = performance.now();
  const r = spawnSync(SQLITE3, ['-readonly', db, sql], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench: sqlite3 failed: ${r.stderr}`);
  return performance.now() - t0;
}

export const engineVsSqlite: Benchmark = {
  name: 'engine-vs-sqlite',
  unit: 'ratio',
  goal: { atLeast: 10 },
  async run(ctx) {
    const db = sqliteCopy(ctx, await csvFile(ctx));
    return withEngine(ctx, async (rig, csv) => {
      const { version } = await load(rig, csv);
      const ratios: number[] = [];
      let engineTotal = 0;
      let sqliteTotal = 0;
      const lines: string[] = [];
      for (const q of QUERIES) {
        const engine: number[] = [];
        const sqlite: number[] = [];
        for (let i = 0; i < 7; i++) {
          const r = await rig.post(queryPath(version), q.spec);
          if (r.status !== 200) throw new Error(`bench: ${q.name}: ${JSON.stringify(r.body)}`);
          engine.push(r.ms);
          sqlite.push(sqliteMs(db, q.sql));
        }
        ratios.push(median(sqlite) / median(engine));
        engineTotal += median(engine);
        sqliteTotal += median(sqlite);
        lines.push(
          `${q.name}: engine ${round(median(engine), 1)} ms, sqlite3 ${round(median(sqlite), 1)} ms (${round(median(sqlite) / median(engine), 1)}x)`,
        );
      }
      process.stdout.write(`bench: p50 per query, 1 M rows: ${lines.join('; ')}\n`);
      // The four queries as one workload (sum of p50s); the least gain of one query beside it.
      return {
        value: round(sqliteTotal / engineTotal, 1),
        baseline: { name: 'sqlite3-cli-p50-sum-ms', value: round(sqliteTotal, 1) },
        extra: {
          'engine-p50-sum-ms': round(engineTotal, 1),
          'least-ratio-of-one-query': round(Math.min(...ratios), 1),
        },
      };
    });
  },
};

export const engineQueryP99: Benchmark = {
  name: 'engine-query-p99',
  unit: 'ms',
  goal: { below: 50 },
  async run(ctx) {
    const csv = await csvFile(ctx);
    const db = sqliteCopy(ctx, csv);
    const q = QUERIES[0];
    // What users get: through the client API (TLS, JWT, authorisation cached, audit) and the engine.
    const client = await clientApiQueryTimes(ctx, csv, q.spec, 200);
    // The engine's own API alone (trust-zone mTLS), and DuckDB alone in this process (the limit).
    const engineApi = await withEngine(ctx, async (rig) => {
      const { version } = await load(rig, csv);
      const through: number[] = [];
      for (let i = 0; i < 200; i++) through.push((await rig.post(queryPath(version), q.spec)).ms);
      return through;
    });
    const instance = await DuckDBInstance.create(':memory:', { threads: '2', memory_limit: '512MB' });
    const conn = await instance.connect();
    await conn.run(`CREATE TABLE orders AS SELECT * FROM read_csv('${csv}', header = true)`);
    const alone: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      await conn.runAndReadAll(q.sql);
      alone.push(performance.now() - t0);
    }
    conn.closeSync();
    instance.closeSync();
    const sqlite: number[] = [];
    for (let i = 0; i < 20; i++) sqlite.push(sqliteMs(db, q.sql));
    const p99 = percentile(client, 99);
    process.stdout.write(
      `bench: ${q.name}, 1 M rows: client API p50 ${round(median(client), 1)} / p99 ${round(p99, 1)} ms; engine API alone p99 ${round(percentile(engineApi, 99), 1)} ms; DuckDB alone p99 ${round(percentile(alone, 99), 1)} ms; sqlite3 CLI p50 ${round(median(sqlite), 1)} ms\n`,
    );
    return {
      value: round(p99, 1),
      baseline: { name: 'duckdb-alone-p99-ms', value: round(percentile(alone, 99), 1) },
      extra: {
        'client-api-p50-ms': round(median(client), 1),
        'engine-api-p99-ms': round(percentile(engineApi, 99), 1),
        'sqlite3-cli-p50-ms': round(median(sqlite), 1),
      },
    };
  },
};

export const engineCsvLoad: Benchmark = {
  name: 'engine-csv-load',
  unit: 'ratio',
  goal: { atLeast: 0.8 },
  async run(ctx) {
    return withEngine(ctx, async (rig, csv) => {
      const engine: number[] = [];
      const duck: number[] = [];
      const sqlite: number[] = [];
      for (let i = 0; i < 3; i++) {
        engine.push((await load(rig, csv)).ms);
        // DuckDB's own read_csv into a table of a new database file, in this process.
        const file = join(ctx.tmp, 'engine', `duck-${i}.duckdb`);
        const t0 = performance.now();
        const instance = await DuckDBInstance.create(file, { threads: '2', memory_limit: '512MB' });
        const conn = await instance.connect();
        await conn.run(`CREATE TABLE orders AS SELECT * FROM read_csv('${csv}', header = true)`);
        await conn.run('CHECKPOINT');
        conn.closeSync();
        instance.closeSync();
        duck.push(performance.now() - t0);
        const db = join(ctx.tmp, 'engine', `cli-${i}.db`);
        const s0 = performance.now();
        spawnSync(SQLITE3, [db, `.import --csv ${csv} orders`]);
        sqlite.push(performance.now() - s0);
      }
      process.stdout.write(
        `bench: 1 M x 10 CSV into a version: engine ${round(median(engine), 0)} ms, DuckDB read_csv ${round(median(duck), 0)} ms, sqlite3 .import ${round(median(sqlite), 0)} ms\n`,
      );
      return {
        value: round(median(duck) / median(engine), 2),
        baseline: { name: 'duckdb-read-csv-ms', value: round(median(duck), 0) },
        extra: { 'engine-ms': round(median(engine), 0), 'sqlite3-import-ms': round(median(sqlite), 0) },
      };
    });
  },
};

export const idleRssEngine: Benchmark = {
  name: 'idle-rss-engine',
  unit: 'MB',
  goal: { below: 120 },
  async run(ctx) {
    return withEngine(ctx, async (rig) => ({ value: round(await maxIdleRssMb(rig.engine.pid!), 1), baseline: null }));
  },
};

export const engineLoadPeakRss: Benchmark = {
  name: 'engine-load-peak-rss',
  unit: 'MB',
  goal: { below: 400 },
  async run(ctx) {
    return withEngine(ctx, async (rig, csv) => {
      const before = await maxIdleRssMb(rig.engine.pid!);
      await load(rig, csv);
      const peak = peakRssMb(rig.engine.pid!);
      return { value: round(peak, 1), baseline: { name: 'engine-idle-rss-before', value: round(before, 1) } };
    });
  },
};
