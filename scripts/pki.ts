#!/usr/bin/env node
// Entry point only: generates the dev/test PKI (see lib/pki/generate.ts).
import { Command, Option } from 'commander';
import { FortError } from '../lib/errors.js';
import { generatePki } from '../lib/pki/generate.js';
import { basename } from 'node:path';
import { PKI_ZONES, pkiFiles, pkiPaths, type PkiZone } from '../lib/pki/layout.js';

// Zones are named on the command line as their directories are (trust-zone, client-zone, ...).
const ZONE_DIRS = PKI_ZONES.map((z) => basename(pkiPaths('.')[z].dir));
const zoneByDir = (dir: string): PkiZone => PKI_ZONES[ZONE_DIRS.indexOf(dir)]!;

const program = new Command()
  .name('pki')
  .description('Generate the Fort dev/test PKI: trust-zone, client-zone, dev cloud CAs, leaf certs and the JWT key')
  .requiredOption('--out <dir>', 'output directory')
  .option('--force', 'overwrite existing files', false)
  .option('--fort-id <id>', 'fort id (device cert CN, CA names)', 'fort-dev-1')
  .option('--client-api-name <name...>', 'SANs of the client API server cert (default: localhost 127.0.0.1)')
  .option('--server-name <name...>', 'SANs of the agent and dev-cloud server certs (default: localhost 127.0.0.1)')
  .addOption(
    new Option('--zone <dir...>', 'only these zones (an installed fort needs trust-zone and client-zone)').choices(
      ZONE_DIRS,
    ),
  )
  .action(
    async (o: {
      out: string;
      force: boolean;
      fortId: string;
      clientApiName?: string[];
      serverName?: string[];
      zone?: string[];
    }) => {
      const zones = o.zone?.map(zoneByDir);
      const paths = await generatePki({
        ...(zones ? { zones } : {}),
        out: o.out,
        force: o.force,
        fortId: o.fortId,
        clientApiNames: o.clientApiName,
        serverNames: o.serverName,
      });
      process.stdout.write(`${pkiFiles(paths, zones).join('\n')}\n`);
    },
  );

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof FortError)) throw err;
  process.stderr.write(`pki: ${err.message}\n`);
  process.exitCode = 1;
}
