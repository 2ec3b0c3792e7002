import { ConfigError, daemonExitCode, FortError } from './errors.js';
import type { Logger } from './logger.js';

/**
 * Report a start-up failure once, in words an operator can act on, and exit with a
 * sysexits code (78 config, 65 data) that the unit's RestartPreventExitStatus= honours.
 */
export function failStart(processName: string, err: unknown, log?: Logger): never {
  const message =
    err instanceof FortError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  for (const line of message.split('\n')) process.stderr.write(`${processName}: ${line}\n`);
  if (log) {
    const code = err instanceof FortError ? err.code : undefined;
    log.fatal(
      { code, problems: err instanceof ConfigError ? err.problems : undefined },
      `start failed: ${err instanceof FortError ? err.message : String(err)}`,
    );
  }
  process.exit(daemonExitCode(err));
}
