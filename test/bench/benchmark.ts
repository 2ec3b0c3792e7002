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
  /** Other numbers of the same run worth keeping beside it (e.g. an earlier baseline), by name. */
  extra?: Record<string, number>;
}

export interface Benchmark {
  name: string;
  unit: string;
  /** Pass when value < below (times, memory), value ≤ atMost, or value ≥ atLeast (throughput). */
  goal: { below: number } | { atMost: number } | { atLeast: number };
  run(ctx: BenchContext): Promise<Measured>;
}

export function goalText(b: Benchmark): string {
  if ('below' in b.goal) return `< ${b.goal.below} ${b.unit}`;
  if ('atMost' in b.goal) return `<= ${b.goal.atMost} ${b.unit}`;
  return `>= ${b.goal.atLeast} ${b.unit}`;
}

export function meetsGoal(b: Benchmark, value: number): boolean {
  if ('below' in b.goal) return value < b.goal.below;
  if ('atMost' in b.goal) return value <= b.goal.atMost;
  return value >= b.goal.atLeast;
}
