import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import { testIssuer } from '../../helpers/jwt.js';
import {
  DIST,
  startAgent,
  startEngine,
  tempDir,
  testInstallation,
  testPki,
  type TestInstallation,
} from '../../helpers/fort.js';

const run = promisify(execFile);

/** Every file under `dir`, relative path → text. */
function readTree(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = join(prefix, e.name);
    if (e.isDirectory()) Object.assign(out, readTree(dir, rel));
    else out[rel] = readFileSync(join(dir, rel), 'utf8');
  }
  return out;
}

/** The base64 body of a PEM file: what would give a key away, whatever its armour. */
const pemBody = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .join('');

/**
 * `fortctl support-bundle` on a running agent and engine: what support needs is in it, and a
 * search for every key, token and secret the installation holds (and some a buggy module might
 * have logged) finds none of them.
 */
describe('fortctl support-bundle (real agent and engine)', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let agent: Supervised;
  let engine: Supervised;
  let token: string;
  let files: Record<string, string>;
  let bundle: string;

  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { engine: true, logLevel: 'debug' });
    engine = await startEngine(inst.files.engine);
    await engine.waitReady(20_000);
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);
    token = await (await testIssuer({ issuer: 'https://cloud.test', audience: 'fort:x', tenant: 't1' })).sign();
    // The logs as the dev stack writes them, with what a bug might once have leaked.
    const logs = join(inst.dir, 'logs');
    mkdirSync(logs);
    const leaks = [
      JSON.stringify({ level: 50, msg: 'upstream said no', authorization: `Bearer ${token}` }),
      JSON.stringify({ level: 40, msg: `retrying with ${token}` }),
      `curl -H "Authorization: Bearer ${token}" https://fort.example/api/v1/apps`,
      JSON.stringify({ level: 30, msg: 'dumped', pem: readFileSync(pki.trustZone.agentKey, 'utf8') }),
      'GET https://svc:hunter2-password@proxy.example/ failed',
      'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    ];
    writeFileSync(join(logs, 'agent.log'), [...agent.stdout, ...leaks].join('\n'));
    writeFileSync(join(logs, 'engine.log'), engine.stdout.join('\n'));
    bundle = join(tempDir('bundle'), 'support.tar.gz');
    const { stdout } = await run(process.execPath, [
      join(DIST, 'fortctl/main.js'),
      '--config',
      inst.files.fortctl,
      'support-bundle',
      '--out',
      bundle,
      '--log-dir',
      logs,
      '--agent-config',
      inst.files.agent,
      '--dm-config',
      inst.files.dm,
      '--engine-config',
      inst.files.engine,
    ]);
    expect(stdout.trim()).toBe(bundle);
    const out = tempDir('unpacked');
    execFileSync('tar', ['-xzf', bundle, '-C', out]);
    files = readTree(join(out, 'fort-support'));
  });
  afterAll(async () => {
    await agent?.stop();
    await engine?.stop();
    inst?.cleanup();
  });

  it('holds what support needs, readable by its owner only', () => {
    expect(statSync(bundle).mode & 0o777).toBe(0o600);
    expect(Object.keys(files).sort()).toEqual([
      'agent/apps.json',
      'agent/certificates.json',
      'agent/dead-letters.json',
      'agent/health.json',
      'agent/log-levels.json',
      'agent/metrics.txt',
      'agent/reloads.json',
      'agent/update-state.json',
      'agent/version.json',
      'config/agent.toml',
      'config/deployment-manager.toml',
      'config/engine.toml',
      'config/fortctl.toml',
      'logs/agent.log',
      'logs/engine.log',
      'manifest.json',
    ]);
    expect(JSON.parse(files['agent/health.json']!)).toMatchObject({ status: 200, body: { status: 'healthy' } });
    expect(JSON.parse(files['manifest.json']!)).toMatchObject({ problems: [] });
    expect(files['agent/metrics.txt']).toContain('fort_');
    expect(files['config/agent.toml']).toContain('[admin]');
    expect(files['logs/agent.log']).toContain('"msg":"fort-agent ready"');
    expect(files['logs/agent.log']).toContain('upstream said no');
  });

  it('holds no key, token, password or secret of the installation', () => {
    const everything = Object.values(files).join('\n');
    const keyFiles = Object.values(pki)
      .flatMap((zone) => Object.values(zone as Record<string, string>))
      .filter((f) => f.endsWith('.key'));
    expect(keyFiles.length).toBeGreaterThanOrEqual(8);
    for (const f of keyFiles) {
      const body = pemBody(f);
      // Any 40 characters of a key would do: searched in pieces, not only whole.
      for (let i = 0; i + 40 <= body.length; i += 40) expect(everything, f).not.toContain(body.slice(i, i + 40));
    }
    for (const secret of [token, token.split('.')[2]!, 'hunter2-password', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'])
      expect(everything).not.toContain(secret);
    expect(everything).not.toMatch(/PRIVATE KEY-----\n[A-Za-z0-9+/]/);
  });
});
