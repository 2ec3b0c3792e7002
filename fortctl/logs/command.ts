import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { resolveFrom } from '../../lib/config/load.js';
import { wholeNumber } from '../args.js';
import {
  JOURNAL_OUTPUTS,
  LOG_UNITS,
  journalctlArgs,
  runJournalctl,
  type JournalOutput,
  type LogUnit,
} from './journal.js';
import { tailFile } from './tail.js';

interface LogsOptions {
  follow?: boolean;
  lines: number;
  unit: LogUnit;
  file?: string;
  output: JournalOutput;
}

/** Where the dev stack (scripts/dev-stack.ts) writes a process's stdout, relative to the working directory. */
const devStackLog = (unit: LogUnit | '<unit>') => `.fort-dev/logs/${unit}.log`;

/** `fortctl logs`: the journal of the unit, or a stdout file on hosts without systemd and in the dev stack. */
export function logsCommand(): Command {
  return new Command('logs')
    .description(
      `the last lines of the agent's (or deployment manager's) log, with --follow new ones until Ctrl-C: from the systemd journal, or --file (default ./${devStackLog('<unit>')} when it exists)`,
    )
    .option('-f, --follow', 'keep printing new lines until Ctrl-C')
    .option('-n, --lines <n>', 'how many of the last lines (0..100000)', wholeNumber(0, 100_000), 50)
    .addOption(new Option('--unit <unit>', 'whose log').choices(LOG_UNITS).default('agent'))
    .option('--file <path>', 'tail this log file instead of the journal (follows truncation and rotation)')
    .addOption(
      new Option(
        '--output <format>',
        "journal format: cat = the JSON lines as written, short-iso = with journald's time, host and pid",
      )
        .choices(JOURNAL_OUTPUTS)
        .default('cat'),
    )
    .action(async (o: LogsOptions) => {
      process.exitCode = await showLogs(o, process.cwd());
    });
}

async function showLogs(o: LogsOptions, cwd: string): Promise<number> {
  const dev = resolveFrom(cwd, devStackLog(o.unit));
  const file = o.file ?? (existsSync(dev) ? dev : undefined);
  if (file) return tail(file, o);
  const code = await runJournalctl(
    journalctlArgs({ unit: o.unit, lines: o.lines, follow: o.follow === true, output: o.output }),
  );
  if (code !== undefined) return code;
  process.stderr.write(
    `fortctl: journalctl not found (not a systemd host?): pass --file <log file>, where the ${o.unit}'s stdout goes (the dev stack writes ${devStackLog(o.unit)})\n`,
  );
  return 1;
}

/** The file's tail; following ends with exit 0 on Ctrl-C, SIGTERM or a reader that went away (`| head`). */
async function tail(file: string, o: LogsOptions): Promise<number> {
  const stop = new AbortController();
  const abort = () => stop.abort();
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, abort);
  process.stdout.on('error', abort);
  const write = (chunk: Buffer) =>
    new Promise<void>((resolve, reject) =>
      chunk.length === 0 ? resolve() : process.stdout.write(chunk, (err) => (err ? reject(err) : resolve())),
    );
  try {
    await tailFile({ file, lines: o.lines, follow: o.follow === true, signal: stop.signal, write });
    return 0;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPIPE' || stop.signal.aborted) return 0;
    process.stderr.write(`fortctl: cannot read ${file}: ${code ?? (err as Error).message}\n`);
    return 1;
  } finally {
    for (const s of signals) process.off(s, abort);
    process.stdout.off('error', abort);
  }
}
