import { mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { rssKiB } from './rss.js';

/**
 * Retained objects of a daemon, from V8 heap snapshots: the daemons run with
 * `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR` (node flags the soak adds, nothing in the
 * product and no inspector or listener), SIGUSR2 makes one write a snapshot there, and a
 * snapshot collects garbage first, so what it holds is what the process retains.
 */
export const heapSnapshotArgs = (dir: string) => ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`];

/** The classes the growth rule judges (by constructor name; `(closure)` is every function). */
export const HEAP_CLASSES = ['Timeout', 'TimersList', 'Promise', '(closure)'] as const;

/**
 * The whole heap is judged without compiled code (`(code)`: bytecode, machine code, function
 * infos): that is V8's cache of the program, which grows for minutes after a start as more of
 * it runs and is optimised (the agent's +2 MiB over a 30-minute soak's steady half) and is
 * flushed when old; a leak of data shows in the rest.
 */
export const NODES = 'nodes (no code)';
export const BYTES = 'bytes (no code)';

export interface HeapCounts {
  /** Objects per class: an object's constructor name, `(closure)` for functions, `(<type>)` for the rest. */
  byClass: Record<string, number>;
  /** Their own sizes, in bytes. */
  bytesByClass: Record<string, number>;
  nodes: number;
  /** The sum of every node's own size: the retained heap, in bytes. */
  selfBytes: number;
}

/** A class's count, or one of the whole-heap measures (NODES, BYTES). */
export function measure(h: HeapCounts, key: string): number {
  if (key === NODES) return h.nodes - (h.byClass['(code)'] ?? 0);
  if (key === BYTES) return h.selfBytes - (h.bytesByClass['(code)'] ?? 0);
  return h.byClass[key] ?? 0;
}

interface SnapshotJson {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Counts a .heapsnapshot's nodes by class (the JSON format's `snapshot.meta.node_fields`). */
export function countHeapSnapshot(text: string): HeapCounts {
  const snap = JSON.parse(text) as SnapshotJson;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  if (typeAt! < 0 || nameAt! < 0 || sizeAt! < 0) throw new Error(`not a heap snapshot: node_fields ${fields.join()}`);
  const byClass: Record<string, number> = {};
  const bytesByClass: Record<string, number> = {};
  const nodes = snap.nodes;
  let selfBytes = 0;
  for (let i = 0; i < nodes.length; i += fields.length) {
    const type = types[nodes[i + typeAt!]!]!;
    const cls = type === 'object' ? snap.strings[nodes[i + nameAt!]!]! : `(${type})`;
    const size = nodes[i + sizeAt!]!;
    byClass[cls] = (byClass[cls] ?? 0) + 1;
    bytesByClass[cls] = (bytesByClass[cls] ?? 0) + size;
    selfBytes += size;
  }
  return { byClass, bytesByClass, nodes: nodes.length / fields.length, selfBytes };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether `pid` still has `file` open (Linux /proc); a process that is gone has nothing open. */
function hasOpen(pid: number, file: string): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    throw new Error(`process ${pid} exited while writing its heap snapshot`);
  }
  return fds.some((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === file;
    } catch {
      return false;
    }
  });
}

export interface HeapSnapshotTaken {
  pid: number;
  atMs: number;
  counts: HeapCounts;
  /** From the signal until the file was closed (the process does nothing else meanwhile). */
  snapshotMs: number;
  /** Reading and counting it (in the soak process). */
  countMs: number;
  fileMiB: number;
  /**
   * RSS just before the signal and once the file is written: what the snapshot left resident
   * (V8's heap profiler keeps its strings and object ids, and glibc keeps the freed rest).
   */
  rssBeforeKiB: number;
  rssAfterKiB: number;
}

/**
 * Signals `pid` for a heap snapshot into `dir` (its --diagnostic-dir, one per daemon), waits
 * until the process has closed the file, counts it and deletes it.
 */
export async function takeHeapSnapshot(
  pid: number,
  dir: string,
  atMs: number,
  timeoutMs = 120_000,
): Promise<HeapSnapshotTaken> {
  mkdirSync(dir, { recursive: true });
  const before = new Set(readdirSync(dir));
  const rssBeforeKiB = rssKiB(pid);
  if (rssBeforeKiB === undefined) throw new Error(`process ${pid} is not running`);
  const started = Date.now();
  process.kill(pid, 'SIGUSR2');
  const deadline = started + timeoutMs;
  while (Date.now() < deadline) {
    await sleep(100);
    const name = readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (!name) {
      if (rssKiB(pid) === undefined) throw new Error(`process ${pid} exited before writing its heap snapshot`);
      continue;
    }
    const file = join(dir, name);
    if (hasOpen(pid, file)) continue;
    const snapshotMs = Date.now() - started;
    const rssAfterKiB = rssKiB(pid);
    if (rssAfterKiB === undefined) throw new Error(`process ${pid} exited after its heap snapshot`);
    const countStarted = Date.now();
    const fileMiB = Math.round((statSync(file).size / 2 ** 20) * 10) / 10;
    let counts: HeapCounts;
    try {
      counts = countHeapSnapshot(readFileSync(file, 'utf8'));
    } catch (err) {
      // Seen before its writer had it open: wait for the writer.
      if (err instanceof SyntaxError) continue;
      throw err;
    }
    rmSync(file);
    return {
      pid,
      atMs,
      counts,
      snapshotMs,
      countMs: Date.now() - countStarted,
      fileMiB,
      rssBeforeKiB,
      rssAfterKiB,
    };
  }
  throw new Error(`no heap snapshot from process ${pid} within ${timeoutMs} ms`);
}

/** A class (or NODES, BYTES) at the three snapshots, and whether it failed the rule. */
export interface ClassGrowth {
  start: number;
  middle: number;
  end: number;
  /** end − start, and as a percentage of start. */
  growth: number;
  growthPercent: number;
  failed: boolean;
}

export interface HeapGrowth {
  pid: number | null;
  /** Elapsed seconds of the three snapshots. */
  atSeconds: number[];
  classes: Record<string, ClassGrowth>;
  /** The (up to 5) classes that grew most from start to end, whatever they are (for reading, not judged). */
  topGrowth: Record<string, number>;
  /** Compiled code at the three snapshots, in bytes (for reading, not judged). */
  codeBytes: number[];
  /** Why it could not be judged (a restart between snapshots, a snapshot that failed). */
  notMeasured?: string;
  /** What it took, and the process's RSS before and after each snapshot (MiB). */
  cost: { snapshotMs: number[]; countMs: number[]; fileMiB: number[]; rssMiB: [number, number][] };
}

/**
 * The rule: a class fails when it grew at both steps, start → middle → end (a leak grows all the
 * time; what comes and goes with the load does not), and from start to end by more than
 * `minGrowth` objects and more than `minPercent` % of its start count. NODES and BYTES (the
 * whole retained heap but compiled code) are judged the same way.
 */
export const HEAP_RULE: Record<string, { minGrowth: number; minPercent: number }> = {
  // 10 %: a leaking loop's count grows with its process's age, and the heap phase is a fifth of
  // the run (CI's 5-minute soak with the old resume loop: 396 → 440 → 484, +22 %).
  Timeout: { minGrowth: 50, minPercent: 10 },
  TimersList: { minGrowth: 20, minPercent: 20 },
  Promise: { minGrowth: 200, minPercent: 20 },
  '(closure)': { minGrowth: 500, minPercent: 5 },
  [NODES]: { minGrowth: 5000, minPercent: 5 },
  [BYTES]: { minGrowth: 512 * 1024, minPercent: 5 },
};

export function classGrowth(start: number, middle: number, end: number, rule = { minGrowth: 0, minPercent: 0 }) {
  const growth = end - start;
  const growthPercent = start > 0 ? Math.round((growth / start) * 1000) / 10 : growth > 0 ? Infinity : 0;
  const failed = start < middle && middle < end && growth > rule.minGrowth && growthPercent > rule.minPercent;
  return { start, middle, end, growth, growthPercent, failed };
}

/** Judges one process's three snapshots (start, middle and end of the heap phase) by HEAP_RULE. */
export function heapGrowth(snaps: (HeapSnapshotTaken | Error)[], rule = HEAP_RULE): HeapGrowth {
  const taken = snaps.filter((s): s is HeapSnapshotTaken => !(s instanceof Error));
  const cost = {
    snapshotMs: taken.map((s) => s.snapshotMs),
    countMs: taken.map((s) => s.countMs),
    fileMiB: taken.map((s) => s.fileMiB),
    rssMiB: taken.map(
      (s) => [s.rssBeforeKiB, s.rssAfterKiB].map((k) => Math.round(k / 102.4) / 10) as [number, number],
    ),
  };
  const atSeconds = taken.map((s) => Math.round(s.atMs / 1000));
  const failedSnap = snaps.find((s): s is Error => s instanceof Error);
  const notMeasured = failedSnap
    ? failedSnap.message
    : snaps.length !== 3
      ? `${snaps.length} snapshots, not 3`
      : new Set(taken.map((s) => s.pid)).size > 1
        ? `restarted between snapshots (pids ${taken.map((s) => s.pid).join(', ')})`
        : undefined;
  const codeBytes = taken.map((s) => s.counts.bytesByClass['(code)'] ?? 0);
  if (notMeasured)
    return { pid: taken.at(-1)?.pid ?? null, atSeconds, classes: {}, topGrowth: {}, codeBytes, notMeasured, cost };
  const [a, b, c] = taken.map((s) => s.counts) as [HeapCounts, HeapCounts, HeapCounts];
  const classes = Object.fromEntries(
    Object.entries(rule).map(([k, r]) => [k, classGrowth(measure(a, k), measure(b, k), measure(c, k), r)]),
  );
  const topGrowth = Object.fromEntries(
    [...new Set([...Object.keys(a.byClass), ...Object.keys(c.byClass)])]
      .map((k) => [k, measure(c, k) - measure(a, k)] as const)
      .filter(([, n]) => n > 0)
      .sort((x, y) => y[1] - x[1])
      .slice(0, 5),
  );
  return { pid: taken[0]!.pid, atSeconds, classes, topGrowth, codeBytes, cost };
}

/** A count as the report prints it: bytes in MiB. */
export const show = (key: string, n: number) => (key === BYTES ? `${(n / 2 ** 20).toFixed(2)} MiB` : String(n));

/** One line per failed class, naming the process, the class and its three counts. */
export function heapFailures(all: Record<string, HeapGrowth>): string[] {
  return Object.entries(all).flatMap(([p, g]) =>
    g.notMeasured
      ? [`${p} retained objects not measured (${g.notMeasured})`]
      : Object.entries(g.classes)
          .filter(([, c]) => c.failed)
          .map(
            ([k, c]) =>
              `${p} ${k} grew steadily: ${show(k, c.start)} → ${show(k, c.middle)} → ${show(k, c.end)} (+${show(k, c.growth)}, +${c.growthPercent} %)`,
          ),
  );
}

/**
 * When the three snapshots start: at the end of the run, whose second half RSS is judged on (a
 * snapshot spoils the RSS of its process: rss.ts), then twice more a step apart, a tenth of the
 * run but at least 30 s (CI's 5-minute soak: the whole CI must stay under 30 minutes), under the
 * same load: 60 minutes, then 6 + 6 more.
 */
export function heapPhaseMs(durationMs: number): [number, number, number] {
  const step = Math.max(30_000, durationMs / 10);
  return [durationMs, durationMs + step, durationMs + 2 * step];
}

/**
 * Snapshots each process at the given elapsed times (all processes at once: each stops only
 * itself), keeping per process what the rule judges and what each snapshot cost.
 */
export function createHeapSampler(
  procs: Record<string, { pid: () => number | undefined; dir: string }>,
  elapsed: () => number,
  log: (line: string) => void,
) {
  const taken: Record<string, (HeapSnapshotTaken | Error)[]> = Object.fromEntries(
    Object.keys(procs).map((n) => [n, []]),
  );
  const snapshot = async (name: string, p: { pid: () => number | undefined; dir: string }) => {
    const pid = p.pid();
    const atMs = elapsed();
    try {
      if (pid === undefined) throw new Error('not running');
      const s = await takeHeapSnapshot(pid, p.dir, atMs);
      taken[name]!.push(s);
      log(
        `${Math.round(atMs / 1000)} s: heap snapshot of ${name} (${s.fileMiB} MiB, ${s.snapshotMs} ms, counted in ${s.countMs} ms): ${s.counts.nodes} nodes, ${HEAP_CLASSES.map((c) => `${c} ${s.counts.byClass[c] ?? 0}`).join(', ')}`,
      );
    } catch (err) {
      taken[name]!.push(err as Error);
      log(`${Math.round(atMs / 1000)} s: no heap snapshot of ${name}: ${(err as Error).message}`);
    }
  };
  return {
    /** Resolves once the last snapshot is counted. */
    async run(atMs: number[]) {
      for (const t of atMs) {
        await sleep(Math.max(0, t - elapsed()));
        await Promise.all(Object.entries(procs).map(([name, p]) => snapshot(name, p)));
      }
    },
    growth: () => Object.fromEntries(Object.entries(taken).map(([n, s]) => [n, heapGrowth(s)])),
  };
}
