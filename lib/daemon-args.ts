import { parseArgs } from 'node:util';

/**
 * The daemons take one option, so Node's own parseArgs suffices; commander (used by the
 * interactive CLIs) costs a few MB of RSS in processes that idle for months.
 */
export function parseDaemonArgs(argv: string[], name: string, defaultHint: string): { config?: string } {
  try {
    const { values } = parseArgs({ args: argv.slice(2), options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } }, strict: true });
    if (values.help) {
      process.stdout.write(`Usage: ${name} [--config <file>]\n  -c, --config <file>  ${defaultHint}\n`);
      process.exit(0);
    }
    return values.config === undefined ? {} : { config: values.config };
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message}\nUsage: ${name} [--config <file>]\n`);
    process.exit(64); // EX_USAGE
  }
}
