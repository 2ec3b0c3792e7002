#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { createAdminClient, type AdminClient, type AgentHealth, type AuditEntry } from '../../lib/admin-client.js';
import { FortError } from '../../lib/errors.js';
import { loadTlsMaterial } from '../../lib/tls.js';
import { readRuntimeEnv } from '../../lib/runtime-env.js';
import { defaultFortctlConfig, loadFortctlConfig } from './config.js';
import { parseSince } from '../audit/since.js';

/** Exit codes: 0 healthy / done, 1 agent not healthy (or a usage error), 2 unreachable or refused, 78 bad config. */
const program = new Command('fortctl')
  .description('Operate a fort agent over the trust-zone admin API (mutual TLS)')
  .option('-c, --config <file>', 'fortctl.toml (default: $FORTCTL_CONFIG, ./.fort-dev/fortctl.toml, /etc/fort/fortctl.toml)')
  .option('--json', 'print machine-readable JSON');

/** One admin API call with the configured identity; the connection is closed afterwards. */
async function withAdmin<T>(call: (admin: AdminClient) => Promise<T>): Promise<T> {
  const opts = program.opts<{ config?: string }>();
  const file = opts.config ?? defaultFortctlConfig(readRuntimeEnv('FORTCTL_CONFIG').configFile, process.cwd());
  const config = loadFortctlConfig(file);
  const admin = createAdminClient({ url: config.admin.url, tls: loadTlsMaterial(config.admin.tls), timeoutMs: config.admin.timeout_seconds * 1000 });
  return call(admin).finally(admin.close);
}

function printHealth(h: AgentHealth): void {
  process.stdout.write(`agent ${h.fortId}  version ${h.version}  ${h.status}  (up ${h.uptimeSeconds}s)\n`);
  for (const [name, m] of Object.entries(h.modules)) {
    process.stdout.write(`  ${name.padEnd(14)} ${m.state}${m.detail ? `  ${m.detail}` : ''}\n`);
    if (m.info) process.stdout.write(`  ${''.padEnd(14)} ${Object.entries(m.info).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ')}\n`);
  }
}

program
  .command('status')
  .description('show agent health and version')
  .action(async () => {
    const { statusCode, body } = await withAdmin((a) => a.health());
    if (statusCode === 403) throw new FortError('FORT_ERR_FORBIDDEN', `admin API refused this certificate: ${JSON.stringify(body)}`);
    if (program.opts<{ json?: boolean }>().json) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    else printHealth(body);
    process.exitCode = body.status === 'healthy' || body.status === 'degraded' ? 0 : 1;
  });

program
  .command('drain')
  .description('ask the agent to finish in-flight work and exit (systemd restarts it)')
  .action(async () => {
    const { statusCode, body } = await withAdmin((a) => a.drain());
    process.stdout.write(`${statusCode === 202 ? 'draining' : `refused (${statusCode}): ${JSON.stringify(body)}`}\n`);
    process.exitCode = statusCode === 202 ? 0 : 2;
  });

/** Control characters (ANSI escapes in a requested path, say) never reach the operator's terminal. */
const printable = (v: string) => v.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
const cell = (v: string, width: number) => (v.length > width ? `${v.slice(0, width - 1)}…` : v.padEnd(width));

function printAudit(entries: readonly AuditEntry[]): void {
  const decision = (d: unknown) => (d && typeof d === 'object' && typeof (d as { decision?: unknown }).decision === 'string' ? (d as { decision: string }).decision : '-');
  const rows = entries.map((e) => [e.ts, e.actor, e.action, e.target ?? '-', decision(e.detail)].map(printable));
  const header = ['TS', 'ACTOR', 'ACTION', 'TARGET', 'DECISION'];
  const widths = header.map((h, i) => Math.min(60, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
  for (const r of [header, ...rows]) process.stdout.write(`${r.map((v, i) => (i === r.length - 1 ? v : cell(v, widths[i]!))).join('  ')}\n`);
}

const sinceArg = (v: string) => {
  try {
    return parseSince(v, new Date());
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};
const limitArg = (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 1000) throw new InvalidArgumentError('expected an integer 1..1000');
  return n;
};

program
  .command('audit')
  .description('show audit entries (who read or was refused what), oldest first')
  .addOption(new Option('--since <when>', 'a duration back from now (30m, 1h, 2d) or an ISO time').argParser(sinceArg).default(undefined, '1h'))
  .addOption(new Option('--limit <n>', 'at most this many entries, the newest (1..1000)').argParser(limitArg).default(200))
  .action(async (opts: { since?: Date; limit: number }) => {
    const since = opts.since ?? parseSince('1h', new Date());
    const { statusCode, body } = await withAdmin((a) => a.audit(since, opts.limit));
    if (statusCode !== 200) throw new FortError(statusCode === 403 ? 'FORT_ERR_FORBIDDEN' : 'FORT_ERR_ADMIN_LINK', `admin API answered ${statusCode}: ${JSON.stringify(body)}`);
    if (program.opts<{ json?: boolean }>().json) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    else if (body.entries.length === 0) process.stdout.write(`no audit entries since ${since.toISOString()}\n`);
    else {
      printAudit(body.entries);
      if (body.entries.length >= opts.limit) process.stderr.write(`fortctl: showing the newest ${opts.limit} entries; there may be more (narrow --since or raise --limit)\n`);
    }
    process.exitCode = 0;
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`fortctl: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = err instanceof FortError && err.code === 'FORT_ERR_CONFIG' ? 78 : 2;
}
