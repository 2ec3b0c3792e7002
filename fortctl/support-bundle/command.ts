import { Command } from 'commander';
import { execFile } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pack } from 'tar-stream';
import type { AdminClient } from '../../lib/admin-client.js';
import { readRuntimeEnv } from '../../lib/runtime-env.js';
import { readReleaseInfo } from '../../lib/version.js';
import { wholeNumber } from '../args.js';
import { defaultConfigFile } from '../config.js';
import { scrubLogLine, scrubText, scrubToml } from './scrub.js';

type WithAdmin = <T>(call: (admin: AdminClient) => Promise<T>) => Promise<T>;

interface BundleOptions {
  out?: string;
  lines: number;
  agentConfig?: string;
  dmConfig?: string;
  engineConfig?: string;
  logDir?: string;
  config?: string;
}

/** The services whose logs go in, and their units. */
const UNITS = {
  agent: 'fort-agent.service',
  'deployment-manager': 'fort-deployment-manager.service',
  engine: 'fort-engine.service',
} as const;

/** `journalctl -o cat` of a unit: its JSON lines, or undefined without journalctl. */
function journal(unit: string, lines: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    execFile(
      'journalctl',
      ['-u', unit, '-n', String(lines), '-o', 'cat', '--no-pager'],
      { maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout) => {
        const code = (err as NodeJS.ErrnoException | null)?.code;
        if (code === 'ENOENT') resolve(undefined);
        else if (err) reject(new Error(`journalctl -u ${unit} failed (${String(code ?? 'error')})`));
        else resolve(stdout);
      },
    );
  });
}

const lastLines = (text: string, n: number) => text.split('\n').filter(Boolean).slice(-n);

/**
 * `fortctl support-bundle`: what support needs to see, in one .tar.gz (0600): the agent's
 * health, versions, metrics, update state, dead letters (never payloads), certificate summaries,
 * log levels, apps and reloads; the configs with secrets removed; the last lines of each
 * service's log. Everything is scrubbed of keys, tokens, passwords and secrets by shape on the
 * way in (scrub.ts). What cannot be collected is listed in manifest.json, not fatal.
 */
export function supportBundleCommand(withAdmin: WithAdmin): Command {
  return new Command('support-bundle')
    .description(
      "a .tar.gz for support: health, versions, metrics, update state, dead letters (no payloads), certificates, the configs and the logs' last lines, every key, token, password and secret removed. Run it as root: it reads /etc/fort and the journal",
    )
    .option('--out <file>', 'where to write it (default ./fort-support-<time>.tar.gz)')
    .option('-n, --lines <n>', "how many of each log's last lines (0..100000)", wholeNumber(0, 100_000), 1000)
    .option('--agent-config <file>', 'agent.toml (default: as fortctl doctor finds it)')
    .option('--dm-config <file>', 'deployment-manager.toml (default: as fortctl doctor finds it)')
    .option('--engine-config <file>', 'engine.toml (default: beside agent.toml)')
    .option('--log-dir <dir>', "read <dir>/<service>.log instead of the journal (the dev stack's .fort-dev/logs)")
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<BundleOptions>();
      const out = await writeBundle(o, withAdmin, process.cwd());
      process.stdout.write(`${out}\n`);
    });
}

async function writeBundle(o: BundleOptions, withAdmin: WithAdmin, cwd: string): Promise<string> {
  const files: { name: string; body: string }[] = [];
  const problems: { item: string; error: string }[] = [];
  const add = (name: string, body: string) => files.push({ name, body });
  const json = (v: unknown) => `${scrubText(JSON.stringify(v, null, 2))}\n`;

  await withAdmin(async (a) => {
    const calls: [string, () => Promise<{ statusCode: number; body: unknown }>][] = [
      ['agent/health.json', () => a.health()],
      ['agent/version.json', () => a.version()],
      ['agent/update-state.json', () => a.updateState()],
      ['agent/dead-letters.json', () => a.deadLetters(1000)],
      ['agent/certificates.json', () => a.certificates()],
      ['agent/log-levels.json', () => a.logLevels()],
      ['agent/apps.json', () => a.apps()],
      ['agent/reloads.json', () => a.reloads({ limit: 200 })],
    ];
    for (const [name, call] of calls) {
      try {
        const r = await call();
        add(name, json({ status: r.statusCode, body: r.body }));
      } catch (err) {
        problems.push({ item: name, error: scrubText((err as Error).message) });
      }
    }
    try {
      const m = await a.metrics();
      add('agent/metrics.txt', scrubText(m.text));
    } catch (err) {
      problems.push({ item: 'agent/metrics.txt', error: scrubText((err as Error).message) });
    }
  }).catch((err: Error) => problems.push({ item: 'agent admin API', error: scrubText(err.message) }));

  const agentConfig =
    o.agentConfig ?? defaultConfigFile('agent.toml', readRuntimeEnv('FORT_AGENT_CONFIG').configFile, cwd);
  const configs: Record<string, string> = {
    'agent.toml': agentConfig,
    'deployment-manager.toml':
      o.dmConfig ?? defaultConfigFile('deployment-manager.toml', readRuntimeEnv('FORT_DM_CONFIG').configFile, cwd),
    'engine.toml': o.engineConfig ?? join(agentConfig, '..', 'engine.toml'),
    'fortctl.toml': o.config ?? defaultConfigFile('fortctl.toml', readRuntimeEnv('FORTCTL_CONFIG').configFile, cwd),
  };
  for (const [name, file] of Object.entries(configs)) {
    if (!existsSync(file)) continue;
    try {
      add(`config/${name}`, scrubToml(readFileSync(file, 'utf8')));
    } catch (err) {
      problems.push({ item: `config/${name}`, error: (err as NodeJS.ErrnoException).code ?? 'unreadable' });
    }
  }

  for (const [service, unit] of Object.entries(UNITS)) {
    try {
      const text = o.logDir
        ? existsSync(join(o.logDir, `${service}.log`))
          ? readFileSync(join(o.logDir, `${service}.log`), 'utf8')
          : undefined
        : await journal(unit, o.lines);
      if (text === undefined) continue;
      add(`logs/${service}.log`, `${lastLines(text, o.lines).map(scrubLogLine).join('\n')}\n`);
    } catch (err) {
      problems.push({ item: `logs/${service}.log`, error: scrubText((err as Error).message) });
    }
  }

  const createdAt = new Date();
  add(
    'manifest.json',
    json({
      createdAt: createdAt.toISOString(),
      fortctl: readReleaseInfo().version,
      files: files.map((f) => f.name),
      problems,
    }),
  );
  const out = o.out ?? join(cwd, `fort-support-${createdAt.toISOString().replace(/[:.]/g, '-')}.tar.gz`);
  const tar = pack();
  const written = pipeline(tar, createGzip(), createWriteStream(out, { mode: 0o600, flags: 'wx' }));
  for (const f of files) tar.entry({ name: `fort-support/${f.name}`, mode: 0o600, mtime: createdAt }, f.body);
  tar.finalize();
  await written;
  return out;
}
