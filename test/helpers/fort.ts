import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatePki } from '../../lib/pki/generate.js';
import type { PkiPaths } from '../../lib/pki/layout.js';
import { writeFileAtomic } from '../../lib/files.js';
import {
  agentToml,
  deploymentManagerToml,
  engineToml,
  fortctlToml,
  reserveStackPorts,
  type StackLayout,
} from '../../scripts/dev-config.js';
import { startSupervised, type ProcessSpec } from '../../scripts/supervisor/process.js';

const HERE = dirname(fileURLToPath(import.meta.url));
// test/helpers under vitest; dist/test/helpers when the soak runner uses the compiled copy.
export const REPO = resolve(HERE, basename(resolve(HERE, '../..')) === 'dist' ? '../../..' : '../..');
/** Integration tests run the built JS, as systemd does (`npm test` builds first). */
export const DIST = join(REPO, 'dist');

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `fort-${prefix}-`));
}

/** A PKI shared by the tests of one file (generation takes a few hundred ms). */
export async function testPki(dir = tempDir('pki')): Promise<PkiPaths> {
  return generatePki({ out: dir });
}

/**
 * One fort installation's config files in a temp dir, on loopback ports reserved until `cleanup()`
 * (scripts/port-reservation.ts): the agent, the dev cloud (`testDevCloud(pki, { ports })`) and a
 * test's own servers bind them, however often they restart, and no other test can take them.
 * `paired`: no identity in agent.toml (no [fort] id, [iot], [cloud], [api.auth]), only the CA the pairing endpoint chains to: `fortctl pair` gives it one. */
export async function testInstallation(
  pki: PkiPaths,
  opts: {
    healthIntervalSeconds?: number;
    fortId?: string;
    iot?: boolean;
    cloudAuth?: boolean;
    paired?: boolean;
    logLevel?: string;
    /** fort-engine loads and serves app data: its config is written too (start it with startEngine). */
    engine?: boolean;
  } = {},
) {
  const dir = tempDir('inst');
  const reserved = await reserveStackPorts();
  const layout: StackLayout = {
    dir,
    fortId: opts.fortId ?? 'fort-test-1',
    pki,
    ports: reserved.ports,
    dataDir: join(dir, 'data'),
    sourcesDir: join(dir, 'sources'),
    logLevel: opts.logLevel ?? 'debug',
    // The bridge's own static key file is written by testDevCloud; the agent uses the provider.
    ...(opts.cloudAuth ? { cloudAuth: { tenant: 't1' } } : {}),
    ...(opts.iot
      ? { iot: { region: 'eu-west-1', roleAlias: 'fort-iot-role', staticCredentialsFile: join(dir, 'unused.json') } }
      : {}),
    ...(opts.paired ? { paired: true } : {}),
    ...(opts.engine ? { engine: { dataDir: join(dir, 'data', 'engine') } } : {}),
  };
  const files = {
    agent: join(dir, 'agent.toml'),
    dm: join(dir, 'deployment-manager.toml'),
    fortctl: join(dir, 'fortctl.toml'),
    engine: join(dir, 'engine.toml'),
  };
  mkdirSync(layout.sourcesDir!, { recursive: true });
  writeFileAtomic(files.agent, agentToml(layout), 0o644);
  writeFileAtomic(files.dm, deploymentManagerToml(layout, opts.healthIntervalSeconds ?? 1), 0o644);
  writeFileAtomic(files.fortctl, fortctlToml(layout), 0o644);
  if (layout.engine) writeFileAtomic(files.engine, engineToml({ ...layout, engine: layout.engine }), 0o644);
  const cleanup = () => {
    reserved.release();
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, layout, files, cleanup };
}
export type TestInstallation = Awaited<ReturnType<typeof testInstallation>>;

/** The host's proxy variables must not steer the agent's loopback links; a test sets its own. */
export const NO_HOST_PROXY = { https_proxy: '', HTTPS_PROXY: '', no_proxy: '', NO_PROXY: '' };

export function startAgent(configFile: string, extra: Partial<ProcessSpec> = {}) {
  return startSupervised({
    name: 'agent',
    script: join(DIST, 'agent/main.js'),
    args: ['--config', configFile],
    ...extra,
    env: { ...NO_HOST_PROXY, ...extra.env },
  });
}

export function startEngine(configFile: string, extra: Partial<ProcessSpec> = {}) {
  return startSupervised({
    name: 'engine',
    script: join(DIST, 'engine/main.js'),
    args: ['--config', configFile],
    ...extra,
  });
}

export function startDeploymentManager(configFile: string, extra: Partial<ProcessSpec> = {}) {
  return startSupervised({
    name: 'deployment-manager',
    script: join(DIST, 'deployment-manager/main.js'),
    args: ['--config', configFile],
    ...extra,
  });
}

/** Parsed pino lines of a process, for asserting on what it logged. */
export function jsonLines(lines: readonly string[]): Record<string, unknown>[] {
  return lines.flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/** Poll until `probe` returns a value, or fail at the deadline with the last error. */
export async function eventually<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last instanceof Error ? last.message : JSON.stringify(last)}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}
