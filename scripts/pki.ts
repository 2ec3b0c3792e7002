#!/usr/bin/env node
// Entry point only: generates the dev/test PKI (see lib/pki/generate.ts).
import { Command } from 'commander';
import { FortError } from '../lib/errors.js';
import { generatePki } from '../lib/pki/generate.js';
import { pkiFiles } from '../lib/pki/layout.js';

const program = new Command()
  .name('pki')
  .description('Generate the Fort dev/test PKI: trust-zone, client-zone, dev cloud CAs, leaf certs and the JWT key')
  .requiredOption('--out <dir>', 'output directory')
  .option('--force', 'overwrite existing files', false)
  .option('--fort-id <id>', 'fort id (device cert CN, CA names)', 'fort-dev-1')
  .option('--client-api-name <name...>', 'SANs of the client API server cert (default: localhost 127.0.0.1)')
  .option('--server-name <name...>', 'SANs of the agent and dev-cloud server certs (default: localhost 127.0.0.1)')
  .action(async (o: { out: string; force: boolean; fortId: string; clientApiName?: string[]; serverName?: string[] }) => {
    const paths = await generatePki({
      out: o.out,
      force: o.force,
      fortId: o.fortId,
      clientApiNames: o.clientApiName,
      serverNames: o.serverName,
    });
    process.stdout.write(`${pkiFiles(paths).join('\n')}\n`);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof FortError)) throw err;
  process.stderr.write(`pki: ${err.message}\n`);
  process.exitCode = 1;
}
