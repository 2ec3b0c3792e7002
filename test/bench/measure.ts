import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSupervised, type ProcessSpec, type Supervised } from '../../scripts/supervisor/process.js';

export const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export const percentile = (xs: readonly number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

/** A memory line of /proc/<pid>/status (kB), in MB (MiB). */
function statusMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** Resident set size of a live process, MB (MiB), as the kernel reports it in /proc. */
export const rssMb = (pid: number) => statusMb(pid, 'VmRSS');

/** Peak RSS so far (the kernel's high-water mark), MB. */
export const peakRssMb = (pid: number) => statusMb(pid, 'VmHWM');

/** Max RSS over a window of polls: an idle service's footprint including GC/timer bumps. */
export async function maxIdleRssMb(pid: number, windowMs = 3000, everyMs = 200): Promise<number> {
  let max = rssMb(pid);
  for (let t = 0; t < windowMs; t += everyMs) {
    await sleep(everyMs);
    max = Math.max(max, rssMb(pid));
  }
  return max;
}

/** Processes started by one benchmark, so that every one is stopped however it ends. */
export class Scope {
  private readonly live = new Set<Supervised>();

  async start(spec: ProcessSpec): Promise<Supervised> {
    const p = await startSupervised(spec);
    this.live.add(p);
    return p;
  }

  /** Spawn → READY=1 on the notify socket, in ms. Includes the (sub-ms) notify socket bind. */
  async startTimed(spec: ProcessSpec, timeoutMs = 30_000): Promise<{ proc: Supervised; ms: number }> {
    const t0 = performance.now();
    const proc = await this.start(spec);
    await proc.waitReady(timeoutMs);
    return { proc, ms: performance.now() - t0 };
  }

  async stop(p: Supervised): Promise<void> {
    this.live.delete(p);
    const info = await p.stop(15_000); // TimeoutStopSec of the units
    if (info.code !== 0 && info.signal !== 'SIGTERM')
      throw new Error(`${p.name} stopped with code ${info.code}, signal ${info.signal}`);
  }

  /** Reverse start order (DM before the agent it watches); errors are collected, not lost. */
  async stopAll(): Promise<Error[]> {
    const errors: Error[] = [];
    for (const p of [...this.live].reverse()) {
      try {
        await this.stop(p);
      } catch (err) {
        errors.push(err as Error);
      }
    }
    return errors;
  }
}
