import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { once } from 'node:events';
import Database from 'better-sqlite3';
import { nodeArgsFromUnit } from '../../scripts/supervisor/unit-file.js';
import type { Benchmark, BenchContext } from './benchmark.js';
import { median, round } from './measure.js';

/**
 * Loading a CSV into an app version (the reload path: csv connector → version writer) in a
 * child process run with the agent unit's node flags, against the sqlite3 CLI importing the
 * same file (`.import --csv`: all columns TEXT, no type checks). The agent's time is that of
 * the load inside the child (openTableSource + writeAppVersion: parse, convert, insert,
 * fsync, hash), as in the long-running agent; the CLI's is its whole process, from spawn to
 * exit (its start-up is a few ms). Both on the monotonic clock of performance.now().
 */

export const ROWS = 1_000_000;
const RUNS = 3;
const SQLITE3 = '/usr/bin/sqlite3';

export const COLUMNS = [
  { name: 'id', type: 'integer' },
  { name: 'customer', type: 'string' },
  { name: 'amount', type: 'number' },
  { name: 'paid', type: 'boolean' },
  { name: 'day', type: 'date' },
  { name: 'quantity', type: 'integer' },
  { name: 'region', type: 'string' },
  { name: 'unit_price', type: 'number' },
  { name: 'note', type: 'string' },
  { name: 'active', type: 'boolean' },
] as const;

const REGIONS = ['north', 'south', 'east', 'west', 'Île-de-France'];

/** One data row: every type, some NULLs (empty fields), some quoted fields with delimiters and quotes. */
function line(i: number): string {
  const day = `20${String(10 + (i % 15))}-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}`;
  const note = i % 10 === 0 ? '"said ""rush"", twice"' : i % 7 === 0 ? '' : `note ${i % 1000}`;
  return `${i},customer-${i % 9973},${((i * 7919) % 1_000_000) / 100},${i % 2 ? 'true' : 'false'},${i % 50 === 0 ? '' : day},${i % 100},${REGIONS[i % REGIONS.length]},${(i % 10_000) / 10},${note},${i % 3 ? 'yes' : 'no'}\n`;
}

/** The CSV of this bench run, written once (both benchmarks read it). */
export async function csvFile(ctx: BenchContext): Promise<string> {
  const dir = join(ctx.tmp, 'csv-load', 'data');
  const file = join(dir, 'orders.csv');
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  const part = `${file}.part`;
  const out = createWriteStream(part);
  let buf = `${COLUMNS.map((c) => c.name).join(',')}\n`;
  for (let i = 1; i <= ROWS; i++) {
    buf += line(i);
    if (buf.length >= 1 << 16) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(buf);
  await once(out, 'finish');
  renameSync(part, file); // complete or absent: never half a file for the second benchmark
  return file;
}

/** A process from spawn to exit on the wall clock, with its stdout. */
function timed(cmd: string, args: string[]): Promise<{ ms: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (stdout += c));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const ms = performance.now() - t0;
      if (code !== 0) reject(new Error(`bench: ${basename(cmd)} exited with code ${code}, signal ${signal}`));
      else resolve({ ms, stdout });
    });
  });
}

interface AgentLoad {
  /** The load inside the child. */
  ms: number;
  /** The child process from spawn to exit (node start-up and module loading included). */
  processMs: number;
  rows: number;
  maxRssMb: number;
}

const agentNodeArgs = (ctx: BenchContext) => nodeArgsFromUnit(join(ctx.dist, '..', 'systemd', 'fort-agent.service'));

async function agentLoad(ctx: BenchContext, csv: string, run: number): Promise<AgentLoad> {
  const appDir = join(ctx.tmp, 'csv-load', `app-${run}`);
  const definition = JSON.stringify({
    id: 'bench',
    name: 'Bench',
    space: 'bench',
    tables: [{ name: 'orders', connector: 'csv', path: basename(csv), columns: COLUMNS }],
  });
  const { ms: processMs, stdout } = await timed(process.execPath, [
    ...agentNodeArgs(ctx),
    join(ctx.dist, 'test/bench/csv-load-child.js'),
    csv,
    appDir,
    definition,
  ]);
  rmSync(appDir, { recursive: true, force: true });
  const r = JSON.parse(stdout) as { rows: number; ms: number; maxRssKb: number };
  if (r.rows !== ROWS) throw new Error(`bench: the agent loaded ${r.rows} rows, expected ${ROWS}`);
  return { ms: r.ms, processMs, rows: r.rows, maxRssMb: r.maxRssKb / 1024 };
}

async function cliImport(ctx: BenchContext, csv: string, run: number): Promise<number> {
  const db = join(ctx.tmp, 'csv-load', `cli-${run}.db`);
  rmSync(db, { force: true });
  const { ms } = await timed(SQLITE3, [db, `.import --csv ${csv} orders`]);
  const check = new Database(db, { readonly: true });
  const rows = check.prepare('SELECT count(*) FROM orders').pluck().get() as number;
  check.close();
  rmSync(db, { force: true });
  if (rows !== ROWS) throw new Error(`bench: sqlite3 imported ${rows} rows, expected ${ROWS}`);
  return ms;
}

export const csvLoad: Benchmark = {
  name: 'csv-load',
  unit: 'ratio',
  goal: { atLeast: 0.7 },
  async run(ctx) {
    if (!existsSync(SQLITE3)) throw new Error(`bench: ${SQLITE3} is missing (apt-get install sqlite3)`);
    const csv = await csvFile(ctx);
    const agent: number[] = [];
    const agentProcess: number[] = [];
    const cli: number[] = [];
    // Alternated, median of each: the machine is shared and runs wander.
    for (let run = 0; run < RUNS; run++) {
      const load = await agentLoad(ctx, csv, run);
      agent.push(load.ms);
      agentProcess.push(load.processMs);
      cli.push(await cliImport(ctx, csv, run));
    }
    const agentRate = ROWS / (median(agent) / 1000);
    const cliRate = ROWS / (median(cli) / 1000);
    const ms = (xs: number[]) => xs.map((x) => round(x, 0)).join('/');
    process.stdout.write(
      `bench: csv-load ${ROWS} rows x ${COLUMNS.length} columns: agent ${round(agentRate, 0)} rows/s (load ${ms(agent)} ms; whole process ${ms(agentProcess)} ms, ${round(ROWS / (median(agentProcess) / 1000), 0)} rows/s); sqlite3 .import ${round(cliRate, 0)} rows/s (${ms(cli)} ms)\n`,
    );
    return {
      value: round(agentRate / cliRate, 2),
      baseline: { name: 'sqlite3-cli-import-rows-per-s', value: round(cliRate, 0) },
    };
  },
};

export const csvLoadPeakRss: Benchmark = {
  name: 'csv-load-peak-rss',
  unit: 'MB',
  goal: { below: 200 },
  async run(ctx) {
    const csv = await csvFile(ctx);
    const load = await agentLoad(ctx, csv, 0);
    const bare = await timed(process.execPath, [
      ...agentNodeArgs(ctx),
      '-e',
      'process.stdout.write(String(process.resourceUsage().maxRSS))',
    ]);
    const bareMb = Number(bare.stdout) / 1024;
    process.stdout.write(
      `bench: csv-load peak RSS ${round(load.maxRssMb, 1)} MB for ${ROWS} rows x ${COLUMNS.length} columns (load ${round(load.ms, 0)} ms); bare node ${round(bareMb, 1)} MB\n`,
    );
    return { value: round(load.maxRssMb, 1), baseline: { name: 'bare-node-max-rss-mb', value: round(bareMb, 1) } };
  },
};
