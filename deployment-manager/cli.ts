#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { cliExitCode, EXIT } from '../lib/errors.js';
import { readReleaseInfo } from '../lib/version.js';
import { processIo, verifyArtifactCommand } from './artifact/cli.js';
import { operateCommands } from './commands/operate.js';
import { statusCommand } from './commands/status.js';

/**
 * fort-deployment-manager's operator commands (the daemon itself is main.ts). Each command
 * module adds itself here. Exit codes are fortctl's (lib/error-catalogue.ts): usage errors
 * exit 1, a bad config 78, an error nobody expected 70.
 */
const program = new Command('fort-deployment-manager')
  .description('Operator commands of the fort deployment manager')
  .version(readReleaseInfo().version)
  .exitOverride(); // before adding commands: subcommands inherit it

verifyArtifactCommand(program);
statusCommand(program);
operateCommands(program, processIo);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.FAILED; // commander already printed the message
  } else {
    process.stderr.write(`fort-deployment-manager: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = cliExitCode(err);
  }
}
