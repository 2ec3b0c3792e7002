import { parseArgs } from 'node:util';

/**
 * The daemons take two options, so Node's own parseArgs suffices; commander (used by the
 * interactive CLIs) costs a few MB of RSS in processes that idle for months.
 */
export function parseDaemonArgs(
  argv: string[],
  name: string,
  defaultHint: string,
): { config?: string; checkConfig: boolean } {
  try {
    const { values } = parseArgs({
      args: argv.slice(2),
      options: {
        config: { type: 'string', short: 'c' },
        'check-config': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(
        `Usage: ${name} [--config <file>] [--check-config]\n  -c, --config <file>  ${defaultHint}\n  --check-config       print the configuration as loaded (JSON), or why it does not load, and exit (0: it loads, 1: it does not)\n`,
      );
      process.exit(0);
    }
    const checkConfig = values['check-config'] === true;
    return values.config === undefined ? { checkConfig } : { config: values.config, checkConfig };
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message}\nUsage: ${name} [--config <file>] [--check-config]\n`);
    process.exit(64); // EX_USAGE
  }
}
