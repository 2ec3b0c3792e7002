import type { PkiPaths } from '../../lib/pki/layout.js';
import type { Scope } from './measure.js';

export interface BenchContext {
  /** Built tree (dist/): the bench runs the same JS that systemd runs. */
  dist: string;
  /** Fresh PKI of this bench run. */
  pki: PkiPaths;
  /** Temp dir of this bench run, removed at the end. */
  tmp: string;
  /** Every process a benchmark starts goes through it, so the runner can stop them all. */
  scope: Scope;
}

export interface Measured {
  value: number;
  /** Measured in the same run: the machine is shared and absolute numbers wander. */
  baseline: { name: string; value: number } | null;
}

export interface Benchmark {
  name: string;
  unit: string;
  /** Pass when value < below (times, memory) or value ≥ atLeast (throughput). */
  goal: { below: number } | { atLeast: number };
  run(ctx: BenchContext): Promise<Measured>;
}

export function goalText(b: Benchmark): string {
  return 'below' in b.goal ? `< ${b.goal.below} ${b.unit}` : `>= ${b.goal.atLeast} ${b.unit}`;
}

export function meetsGoal(b: Benchmark, value: number): boolean {
  return 'below' in b.goal ? value < b.goal.below : value >= b.goal.atLeast;
}
