#!/usr/bin/env node
import { Command } from 'commander';
import { createAdminClient, type AdminClient, type AgentHealth } from '../../lib/admin-client.js';
import { FortError } from '../../lib/errors.js';
import { loadTlsMaterial } from '../../lib/tls.js';
import { readRuntimeEnv } from '../../lib/runtime-env.js';
import { defaultFortctlConfig, loadFortctlConfig } from './config.js';

/** Exit codes: 0 healthy / done, 1 agent not healthy, 2 unreachable or refused, 78 bad config. */
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

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`fortctl: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = err instanceof FortError && err.code === 'FORT_ERR_CONFIG' ? 78 : 2;
}
