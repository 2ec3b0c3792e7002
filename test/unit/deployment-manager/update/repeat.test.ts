import { afterEach, describe, expect, it, vi } from 'vitest';
import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repeat } from '../../../../deployment-manager/update/repeat.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

afterEach(() => void vi.useRealTimers());

describe('repeat: the deployment manager’s poll, inventory and resume loops', () => {
  it('runs now, then the interval after each run settles; stop ends it, a run under way included', async () => {
    vi.useFakeTimers();
    const started: number[] = [];
    let finish: (() => void) | undefined;
    const loop = repeat(
      () => 1000,
      () => {
        started.push(Date.now());
        return new Promise<void>((r) => (finish = r));
      },
    );
    const t0 = started[0]!;
    expect(started).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(5000); // the first run has not settled: nothing is scheduled
    expect(started).toHaveLength(1);
    finish!();
    await vi.advanceTimersByTimeAsync(999);
    expect(started).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(started.map((t) => t - t0)).toEqual([0, 6000]);

    loop.stop(); // during the second run: when it settles, no third is scheduled
    finish!();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(started).toHaveLength(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stopped between runs, it clears the pending timer', async () => {
    vi.useFakeTimers();
    let runs = 0;
    const loop = repeat(
      () => 1000,
      async () => void runs++,
    );
    await vi.advanceTimersByTimeAsync(2500);
    expect(runs).toBe(3);
    expect(vi.getTimerCount()).toBe(1);
    loop.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toBe(3);
  });

  it('keeps no fired timer alive: after 2 000 runs the heap holds at most one Timeout of it', async () => {
    // A fresh process (the built module), a heap snapshot (which collects garbage first), and a
    // count of the Timeout objects still reachable: the old loop kept every one until stop.
    const script = `
      import { repeat } from ${JSON.stringify(join(REPO, 'dist/deployment-manager/update/repeat.js'))};
      import { getHeapSnapshot } from 'node:v8';
      let runs = 0;
      await new Promise((done) => repeat(() => 0, async () => { if (++runs === 2000) done(); }));
      let text = '';
      for await (const chunk of getHeapSnapshot()) text += chunk;
      const snap = JSON.parse(text);
      const { node_fields: fields, node_types: [types] } = snap.snapshot.meta;
      const [typeAt, nameAt] = [fields.indexOf('type'), fields.indexOf('name')];
      let timeouts = 0;
      for (let i = 0; i < snap.nodes.length; i += fields.length)
        if (types[snap.nodes[i + typeAt]] === 'object' && snap.strings[snap.nodes[i + nameAt]] === 'Timeout') timeouts++;
      process.stdout.write(JSON.stringify({ runs, timeouts }));
      process.exit(0);
    `;
    const out = await new Promise<string>((done, fail) =>
      execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 60_000 }, (err, stdout, stderr) =>
        err ? fail(new Error(`${err.message}\n${stderr}`)) : done(stdout),
      ),
    );
    const { runs, timeouts } = JSON.parse(out) as { runs: number; timeouts: number };
    expect(runs).toBe(2000);
    expect(timeouts).toBeLessThanOrEqual(1);
  });
});
