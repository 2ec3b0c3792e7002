#!/usr/bin/env node
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { openTableSource } from '../../agent/apps/connectors/index.js';
import { parseAppDefinition } from '../../agent/apps/definition.js';
import { writeAppVersion } from '../../agent/apps/version-writer.js';

/**
 * Bench child of csv-load: loads one CSV into a new app version, exactly as a reload does
 * (definition → connector → version writer), in a process of its own so its peak RSS is the
 * load's. Prints one JSON line: rows, milliseconds, peak RSS (KB), then exits.
 * Usage: csv-load-child.js <csv file> <app dir> <definition JSON>
 */
const [csvFile, appDir, definitionJson] = process.argv.slice(2);
if (!csvFile || !appDir || !definitionJson) {
  process.stderr.write('usage: csv-load-child.js <csv file> <app dir> <definition JSON>\n');
  process.exit(64);
}
const def = parseAppDefinition(definitionJson, 'json');
const t0 = performance.now();
const written = await writeAppVersion({
  dir: appDir,
  sources: def.tables.map((t) => openTableSource(t, { dataDirs: [dirname(csvFile)], httpAllowedHosts: [] })),
  maxRows: 50_000_000,
  signal: new AbortController().signal,
  log: pino({ level: 'silent' }),
});
const ms = performance.now() - t0;
process.stdout.write(
  `${JSON.stringify({ rows: written.rowCount, ms, maxRssKb: process.resourceUsage().maxRSS, file: written.tmpFile })}\n`,
);
