#!/usr/bin/env node
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../../lib/files.js';
import { generatePki } from '../../lib/pki/generate.js';
import { goalText, meetsGoal, type Benchmark } from './benchmark.js';
import { eventIngest, eventLatencyP99, idleRssAgentLinked, reconnectToSubscribed } from './iot.js';
import { Scope, round } from './measure.js';
import { authzColdP99, clientApiRows, clientApiRssGrowth } from './client-api.js';
import { csvLoad, csvLoadPeakRss } from './csv-load.js';
import { eventToReloadP99 } from './reloads.js';
import { idleRssAgent, idleRssDeploymentManager, startToReady } from './processes.js';
import { artifactDownloadVerify, dmDownloadPeakRss, dmPollCpuMs } from './updates.js';
import { updateDeployToSuccess } from './update-deploy.js';
import { engineCsvLoad, engineLoadPeakRss, engineQueryP99, engineVsSqlite, idleRssEngine } from './engine.js';

/**
 * `npm run bench`: runs every benchmark against the built processes, writes
 * bench/results/<name>.json and prints a table; names as arguments run only those, `--readme`
 * also puts the table into README.md (between the bench markers). Exit 0 when goals are missed
 * (the table says so), non-zero only when a benchmark could not run. Add new benchmarks here.
 */
const BENCHMARKS: Benchmark[] = [
  startToReady,
  idleRssAgent,
  idleRssDeploymentManager,
  idleRssAgentLinked,
  eventIngest,
  eventLatencyP99,
  reconnectToSubscribed,
  clientApiRows,
  authzColdP99,
  clientApiRssGrowth,
  csvLoad,
  csvLoadPeakRss,
  eventToReloadP99,
  artifactDownloadVerify,
  dmDownloadPeakRss,
  dmPollCpuMs,
  updateDeployToSuccess,
  engineVsSqlite,
  engineQueryP99,
  engineCsvLoad,
  engineLoadPeakRss,
  idleRssEngine,
];

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..'); // dist/test/bench → repo
const RESULTS = join(REPO, 'bench', 'results');

interface Result {
  name: string;
  value: number;
  unit: string;
  baseline: { name: string; value: number } | null;
  extra?: Record<string, number>;
  ratio: number | null;
  goal: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; loadAverage1m: number; node: string };
  date: string;
}

function table(rows: { r: Result; pass: boolean }[]): string {
  const head = ['name', 'value', 'unit', 'baseline', 'ratio', 'goal', 'result'];
  const cells = rows.map(({ r, pass }) => [
    r.name,
    String(r.value),
    r.unit,
    r.baseline ? `${r.baseline.name} ${r.baseline.value}` : '-',
    r.ratio === null ? '-' : `${r.ratio}x`,
    r.goal,
    pass ? 'pass' : 'FAIL',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((s, i) => s.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

const README_START = '<!-- bench:start -->';
const README_END = '<!-- bench:end -->';

/** The table as the README shows it: a code block between the markers, with when and where. */
function writeReadmeTable(text: string): void {
  const file = join(REPO, 'README.md');
  const readme = readFileSync(file, 'utf8');
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${README_START} … ${README_END} section`);
  const where = `${new Date().toISOString().slice(0, 10)}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}, load ${round(loadavg()[0]!, 2)}`;
  const block = `${README_START}\n\`npm run bench -- --readme\`, ${where}:\n\n\`\`\`\n${text}\n\`\`\`\n${README_END}`;
  writeFileAtomic(file, readme.slice(0, start) + block + readme.slice(end + README_END.length), 0o644);
}

async function main(): Promise<number> {
  const tmp = mkdtempSync(join(tmpdir(), 'fort-bench-'));
  let scope = new Scope();
  // Ctrl-C must not leave services running or temp dirs behind.
  process.once(
    'SIGINT',
    () => void scope.stopAll().finally(() => (rmSync(tmp, { recursive: true, force: true }), process.exit(130))),
  );
  const rows: { r: Result; pass: boolean }[] = [];
  let failed = 0;
  try {
    const pki = await generatePki({ out: join(tmp, 'pki') });
    const dist = join(REPO, 'dist');
    // `npm run bench -- event-ingest idle-rss-agent`: only those (exact names).
    const only = process.argv.slice(2).filter((a) => a !== '--readme');
    const unknown = only.filter((n) => !BENCHMARKS.some((b) => b.name === n));
    if (unknown.length)
      throw new Error(
        `unknown benchmark(s): ${unknown.join(', ')}; known: ${BENCHMARKS.map((b) => b.name).join(', ')}`,
      );
    for (const b of BENCHMARKS.filter((x) => only.length === 0 || only.includes(x.name))) {
      scope = new Scope();
      process.stdout.write(`bench: ${b.name} ...\n`);
      try {
        const m = await b.run({ dist, pki, tmp, scope });
        const errors = await scope.stopAll();
        const [firstError] = errors;
        if (firstError) throw firstError;
        const r: Result = {
          name: b.name,
          value: m.value,
          unit: b.unit,
          baseline: m.baseline,
          ...(m.extra ? { extra: m.extra } : {}),
          // A ratio benchmark's value is already the ratio to its baseline (whose value is in other units).
          ratio:
            b.unit === 'ratio'
              ? m.value
              : m.baseline && m.baseline.value > 0
                ? round(m.value / m.baseline.value, 2)
                : null,
          goal: goalText(b),
          // The machine is shared: its load at the time says how far to trust absolute values.
          machine: {
            cpus: cpus().length,
            cpuModel: cpus()[0]?.model ?? 'unknown',
            memoryGiB: Math.round(totalmem() / 2 ** 30),
            loadAverage1m: round(loadavg()[0]!, 2),
            node: process.version,
          },
          date: new Date().toISOString(),
        };
        writeFileAtomic(join(RESULTS, `${b.name}.json`), `${JSON.stringify(r, null, 2)}\n`, 0o644);
        rows.push({ r, pass: meetsGoal(b, m.value) });
      } catch (err) {
        failed += 1;
        await scope.stopAll();
        process.stderr.write(`bench: ${b.name} could not run: ${(err as Error).stack ?? String(err)}\n`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  process.stdout.write(`\n${table(rows)}\n`);
  if (process.argv.includes('--readme')) writeReadmeTable(table(rows));
  if (failed) process.stderr.write(`bench: ${failed} benchmark(s) could not run\n`);
  return failed ? 1 : 0;
}

process.exit(await main());
