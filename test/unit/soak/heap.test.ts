import { describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  classGrowth,
  countHeapSnapshot,
  HEAP_RULE,
  heapFailures,
  heapGrowth,
  heapPhaseMs,
  heapSnapshotArgs,
  takeHeapSnapshot,
  type HeapCounts,
  type HeapSnapshotTaken,
} from '../../soak/heap.js';

/** A .heapsnapshot's JSON with the given node fields (in that order) and nodes. */
function snapshotText(fields: string[], nodes: Record<string, string | number>[]): string {
  const types = ['hidden', 'array', 'string', 'object', 'code', 'closure', 'number'];
  const strings = [''];
  const str = (s: string) => (strings.includes(s) ? strings.indexOf(s) : strings.push(s) - 1);
  const flat = nodes.flatMap((n) =>
    fields.map((f) =>
      f === 'type' ? types.indexOf(n[f] as string) : f === 'name' ? str(n[f] as string) : (n[f] ?? 0),
    ),
  );
  return JSON.stringify({
    snapshot: { meta: { node_fields: fields, node_types: [types, 'string', 'number'] }, node_count: nodes.length },
    nodes: flat,
    edges: [],
    strings,
  });
}

const V8_FIELDS = ['type', 'name', 'id', 'self_size', 'edge_count', 'trace_node_id', 'detachedness'];

describe('soak heap snapshots: counting', () => {
  it('counts objects by constructor, functions as (closure), the rest by type, and sums self sizes', () => {
    const nodes = [
      { type: 'object', name: 'Timeout', self_size: 120 },
      { type: 'object', name: 'Timeout', self_size: 120 },
      { type: 'object', name: 'Promise', self_size: 32 },
      { type: 'closure', name: 'tick', self_size: 64 },
      { type: 'closure', name: 'Timeout', self_size: 64 }, // the constructor function itself
      { type: 'string', name: 'Timeout', self_size: 24 },
      { type: 'hidden', name: 'system / Map', self_size: 40 },
    ];
    const expected: HeapCounts = {
      byClass: { Timeout: 2, Promise: 1, '(closure)': 2, '(string)': 1, '(hidden)': 1 },
      bytesByClass: { Timeout: 240, Promise: 32, '(closure)': 128, '(string)': 24, '(hidden)': 40 },
      nodes: 7,
      selfBytes: 464,
    };
    expect(countHeapSnapshot(snapshotText(V8_FIELDS, nodes))).toEqual(expected);
    // The fields are found by name, not by position.
    expect(countHeapSnapshot(snapshotText(['self_size', 'edge_count', 'name', 'type'], nodes))).toEqual(expected);
  });

  it('refuses JSON that is not a heap snapshot', () => {
    expect(() => countHeapSnapshot(snapshotText(['type', 'id'], [{ type: 'object' }]))).toThrow(/not a heap snapshot/);
  });

  it('SIGUSR2 to a process started with heapSnapshotArgs: a real snapshot, counted after GC, file removed', async () => {
    // 300 fired timers: kept in an array (the deployment manager's old bug) or dropped.
    const run = async (keep: boolean) => {
      const dir = mkdtempSync(join(tmpdir(), 'fort-heap-test-'));
      const script = `
        const kept = [];
        for (let i = 0; i < 300; i++) { const t = setTimeout(() => {}, 0); if (${keep}) kept.push(t); }
        setTimeout(() => { process.stdout.write('ready\\n'); setInterval(() => kept.length, 1000); }, 100);
      `;
      const child: ChildProcess = spawn(process.execPath, [...heapSnapshotArgs(dir), '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      try {
        await new Promise<void>((ready) => createInterface({ input: child.stdout! }).once('line', () => ready()));
        const s = await takeHeapSnapshot(child.pid!, dir, 1234, 30_000);
        expect(readdirSync(dir)).toEqual([]);
        expect(s).toMatchObject({ pid: child.pid, atMs: 1234 });
        expect(s.rssBeforeKiB).toBeGreaterThan(0);
        expect(s.fileMiB).toBeGreaterThan(0);
        return s.counts;
      } finally {
        child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      }
    };
    const [kept, dropped] = [await run(true), await run(false)];
    expect(kept.byClass['Timeout']).toBeGreaterThanOrEqual(300);
    expect(dropped.byClass['Timeout'] ?? 0).toBeLessThan(5);
    expect(kept.nodes).toBeGreaterThan(dropped.nodes);
  });

  it('a process gone while one waits for its snapshot is an error, not a hang', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fort-heap-test-'));
    // No --heapsnapshot-signal: SIGUSR2 ends it.
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      await expect(takeHeapSnapshot(child.pid!, dir, 0, 5_000)).rejects.toThrow(/exited before writing/);
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const taken = (
  pid: number,
  atMs: number,
  byClass: Record<string, number>,
  nodes = 100_000,
  selfBytes = 10 << 20,
  bytesByClass: Record<string, number> = {},
) =>
  ({
    pid,
    atMs,
    counts: { byClass, bytesByClass, nodes, selfBytes },
    snapshotMs: 1000,
    countMs: 100,
    fileMiB: 10,
    rssBeforeKiB: 1,
    rssAfterKiB: 2,
  }) satisfies HeapSnapshotTaken;

describe('soak heap snapshots: the growth rule', () => {
  it('a class fails when it grew at both steps and by more than both thresholds from start to end', () => {
    const rule = { minGrowth: 50, minPercent: 20 };
    expect(classGrowth(100, 200, 300, rule)).toEqual({
      start: 100,
      middle: 200,
      end: 300,
      growth: 200,
      growthPercent: 200,
      failed: true,
    });
    expect(classGrowth(100, 300, 200, rule).failed).toBe(false); // not steady: came and went
    expect(classGrowth(100, 100, 300, rule).failed).toBe(false); // one step only
    expect(classGrowth(100, 120, 149, rule).failed).toBe(false); // +49: under minGrowth
    expect(classGrowth(1000, 1100, 1199, rule).failed).toBe(false); // +19.9 %: under minPercent
    expect(classGrowth(1000, 1100, 1201, rule).failed).toBe(true);
    expect(classGrowth(0, 30, 60, rule)).toMatchObject({ growthPercent: Infinity, failed: true });
  });

  it("HEAP_RULE catches the old resume loop as measured in CI's 5-minute soak, not a healthy daemon", () => {
    const { Timeout } = HEAP_RULE;
    expect(classGrowth(396, 440, 484, Timeout).failed).toBe(true);
    expect(classGrowth(598, 685, 772, Timeout).failed).toBe(true); // 4 minutes, accelerated
    expect(classGrowth(12, 13, 14, Timeout).failed).toBe(false); // the agent's, fixed loop
  });

  it('names the process, the class and its counts; a steady heap passes', () => {
    const dm = heapGrowth(
      [
        taken(7, 180_000, { Timeout: 130, Promise: 100 }),
        taken(7, 235_000, { Timeout: 210, Promise: 104 }),
        taken(7, 290_000, { Timeout: 295, Promise: 101 }),
      ],
      { Timeout: { minGrowth: 50, minPercent: 20 }, Promise: { minGrowth: 50, minPercent: 20 } },
    );
    expect(dm.atSeconds).toEqual([180, 235, 290]);
    expect(dm.classes['Timeout']).toMatchObject({ growth: 165, failed: true });
    expect(dm.classes['Promise']!.failed).toBe(false);
    expect(dm.topGrowth).toEqual({ Timeout: 165, Promise: 1 });
    expect(heapFailures({ 'deployment-manager': dm })).toEqual([
      'deployment-manager Timeout grew steadily: 130 → 210 → 295 (+165, +126.9 %)',
    ]);

    const steady = heapGrowth([
      taken(7, 0, { Timeout: 10, TimersList: 5, Promise: 100, '(closure)': 20_000 }),
      taken(7, 1, { Timeout: 12, TimersList: 5, Promise: 130, '(closure)': 20_100 }, 100_500, (10 << 20) + 4096),
      taken(7, 2, { Timeout: 11, TimersList: 5, Promise: 110, '(closure)': 20_150 }, 101_000, (10 << 20) + 8192),
    ]);
    expect(Object.keys(steady.classes)).toEqual([
      'Timeout',
      'TimersList',
      'Promise',
      '(closure)',
      'nodes (no code)',
      'bytes (no code)',
    ]);
    expect(heapFailures({ agent: steady })).toEqual([]);
    // The whole heap is judged too: 5 % more nodes and bytes at both steps fails...
    const grown = heapGrowth([
      taken(7, 0, {}, 100_000, 10 << 20),
      taken(7, 1, {}, 104_000, 10.5 * 2 ** 20),
      taken(7, 2, {}, 108_000, 11 * 2 ** 20),
    ]);
    expect(heapFailures({ agent: grown })).toEqual([
      'agent nodes (no code) grew steadily: 100000 → 104000 → 108000 (+8000, +8 %)',
      'agent bytes (no code) grew steadily: 10.00 MiB → 10.50 MiB → 11.00 MiB (+1.00 MiB, +10 %)',
    ]);
    // ...but not when that is compiled code, which grows for minutes after a start.
    const code = (n: number, mib: number) =>
      [{ '(code)': n }, 100_000 + n, (10 + mib) * 2 ** 20, { '(code)': mib * 2 ** 20 }] as const;
    const warming = heapGrowth([
      taken(7, 0, ...code(20_000, 2)),
      taken(7, 1, ...code(24_000, 2.5)),
      taken(7, 2, ...code(28_000, 3)),
    ]);
    expect(heapFailures({ agent: warming })).toEqual([]);
    expect(warming.codeBytes).toEqual([2, 2.5, 3].map((m) => m * 2 ** 20));
    expect(warming.topGrowth).toEqual({ '(code)': 8000 });
  });

  it('a restart between snapshots or a failed snapshot is not measured, and fails', () => {
    const restarted = heapGrowth([taken(1, 0, {}), taken(2, 1, {}), taken(2, 2, {})]);
    expect(restarted.notMeasured).toBe('restarted between snapshots (pids 1, 2, 2)');
    const failed = heapGrowth([taken(1, 0, {}), new Error('process 1 exited while writing its heap snapshot')]);
    expect(heapFailures({ agent: restarted, 'deployment-manager': failed })).toEqual([
      'agent retained objects not measured (restarted between snapshots (pids 1, 2, 2))',
      'deployment-manager retained objects not measured (process 1 exited while writing its heap snapshot)',
    ]);
    expect(heapFailures({ agent: heapGrowth([taken(1, 0, {}), taken(1, 1, {})]) })).toEqual([
      'agent retained objects not measured (2 snapshots, not 3)',
    ]);
  });

  it('the heap phase follows the run: snapshots at its end and a tenth of it apart, at least 30 s', () => {
    expect(heapPhaseMs(60 * 60_000)).toEqual([3600_000, 3960_000, 4320_000]);
    expect(heapPhaseMs(5 * 60_000)).toEqual([300_000, 330_000, 360_000]);
  });
});
