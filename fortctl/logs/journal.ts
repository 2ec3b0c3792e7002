import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/** The processes of an installation whose logs fortctl shows. */
export const LOG_UNITS = ['agent', 'deployment-manager'] as const;
export type LogUnit = (typeof LOG_UNITS)[number];

/** Their systemd units (systemd/*.service). */
export const SYSTEMD_UNIT: Record<LogUnit, string> = {
  agent: 'fort-agent.service',
  'deployment-manager': 'fort-deployment-manager.service',
};

export const JOURNAL_OUTPUTS = ['cat', 'short-iso'] as const;
export type JournalOutput = (typeof JOURNAL_OUTPUTS)[number];

export interface JournalRequest {
  unit: LogUnit;
  lines: number;
  follow: boolean;
  /** `cat`: the pino JSON lines as written (they carry their own time); `short-iso`: with journald's time, host and pid. */
  output: JournalOutput;
}

/** journalctl's argv; `--no-pager` so piping and scripts see plain lines. */
export function journalctlArgs(r: JournalRequest): string[] {
  return ['-u', SYSTEMD_UNIT[r.unit], '-n', String(r.lines), '-o', r.output, '--no-pager', ...(r.follow ? ['-f'] : [])];
}

/**
 * Runs journalctl on our terminal and resolves with its exit code (128 + n when a signal ended
 * it, as a shell reports it), or undefined when journalctl is not installed.
 */
export function runJournalctl(args: readonly string[]): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn('journalctl', args, { stdio: 'inherit' });
    // Ctrl-C reaches journalctl by itself (same process group); a signal sent to fortctl alone is passed on.
    const pass = (signal: NodeJS.Signals) => child.kill(signal);
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    for (const s of signals) process.on(s, pass);
    const done = () => signals.forEach((s) => process.off(s, pass));
    child.once('error', (err: NodeJS.ErrnoException) => {
      done();
      if (err.code === 'ENOENT') resolve(undefined);
      else reject(err);
    });
    child.once('exit', (code, signal) => {
      done();
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
}
