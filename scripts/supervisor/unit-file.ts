import { readFileSync } from 'node:fs';

/**
 * The node flags of a unit's ExecStart (between the node binary and the script), so the
 * dev stack and the benchmarks run the processes exactly as systemd will.
 */
export function nodeArgsFromUnit(unitPath: string): string[] {
  const line = readFileSync(unitPath, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('ExecStart='));
  if (!line) throw new Error(`${unitPath} has no ExecStart=`);
  const words = line.slice('ExecStart='.length).trim().split(/\s+/);
  const script = words.findIndex((w) => w.endsWith('.js'));
  if (script < 1) throw new Error(`${unitPath}: ExecStart= does not run a .js script`);
  return words.slice(1, script);
}

/** A unit's `RestartSec=` in ms (plain seconds, as ours are written; systemd's default 100 ms when absent). */
export function restartDelayMsFromUnit(unitPath: string): number {
  const line = readFileSync(unitPath, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('RestartSec='));
  if (!line) return 100;
  const value = line.slice('RestartSec='.length).trim();
  const m = /^(\d+(?:\.\d+)?)(s|ms)?$/.exec(value);
  if (!m) throw new Error(`${unitPath}: RestartSec=${value} is not plain seconds or ms`);
  return m[2] === 'ms' ? Number(m[1]) : Number(m[1]) * 1000;
}
