import { printable } from '../output.js';

export type Level = 'ok' | 'warn' | 'fail';

/** One line of `fortctl doctor`. */
export interface Check {
  name: string;
  level: Level;
  detail: string;
}

export const ok = (name: string, detail: string): Check => ({ name, level: 'ok', detail });
export const warn = (name: string, detail: string): Check => ({ name, level: 'warn', detail });
export const fail = (name: string, detail: string): Check => ({ name, level: 'fail', detail });

/** An error's message on one line (config errors list one problem a line). */
export const reason = (err: unknown): string =>
  (err instanceof Error ? err.message : String(err))
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join('; ');

/** `[ok] name: detail`, `[warn] …`, `[FAIL] …`; nothing a peer or a file said can drive the terminal. */
export const formatCheck = (c: Check): string =>
  `[${c.level === 'fail' ? 'FAIL' : c.level}] ${printable(c.name)}: ${printable(c.detail)}`;
