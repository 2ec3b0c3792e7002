import { writeSync } from 'node:fs';
import { FortError } from '../errors.js';

/**
 * What `fort-agent --check-config` and `fort-deployment-manager`'s daemon print with
 * `--check-config`: one JSON line on stdout, the configuration exactly as the process loads it
 * (paths absolute, defaults and pairing filled in), or why it does not load. `fortctl doctor`
 * reads each daemon's configuration this way, so it checks what the daemon would run with
 * without importing the daemon's code (ARCHITECTURE.md: the processes never import each other).
 */
export type ConfigCheck<C = unknown> =
  { ok: true; file: string; config: C } | { ok: false; file: string; code: string | undefined; message: string };

/**
 * Load `file` as the daemon would, print the ConfigCheck and exit: 0 when it loads, 1 when it
 * does not (the check's verdict, as `nginx -t`; the daemon itself would stop with 78). Nothing
 * else of the daemon starts: no logger, no sd_notify, no sockets.
 */
export function printConfigCheck<C>(file: string, load: (file: string) => C): never {
  let check: ConfigCheck<C>;
  try {
    check = { ok: true, file, config: load(file) };
  } catch (err) {
    check = {
      ok: false,
      file,
      code: err instanceof FortError ? err.code : undefined,
      message: err instanceof Error ? err.message : String(err),
    };
  }
  // Synchronous: process.exit must not cut a pipe write short.
  writeSync(1, `${JSON.stringify(check)}\n`);
  process.exit(check.ok ? 0 : 1);
}

/** The ConfigCheck a daemon printed, or an Error saying why its output is not one. */
export function parseConfigCheck<C>(stdout: string): ConfigCheck<C> {
  const line = stdout.trim().split('\n').pop() ?? '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new Error(`expected the JSON line of --check-config, got ${JSON.stringify(line.slice(0, 200))}`);
  }
  const c = parsed as Partial<ConfigCheck<C>>;
  if (typeof parsed !== 'object' || parsed === null || typeof c.ok !== 'boolean' || typeof c.file !== 'string')
    throw new Error('expected the JSON line of --check-config (ok, file)');
  return c as ConfigCheck<C>;
}
