import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'smol-toml';
import { writeSecretFile } from '../../../lib/files.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import { httpsRequest } from '../../helpers/https.js';
import { DIST, eventually, startAgent, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';
import { startTinyproxy } from '../../helpers/tinyproxy.js';

const run = promisify(execFile);
const FORTCTL = join(DIST, 'fortctl/main.js');
/** The host's proxy variables must not steer the checks; a test sets its own. */
const NO_PROXY_ENV = { https_proxy: '', HTTPS_PROXY: '', no_proxy: '', NO_PROXY: '' };

/** The real agent linked to the dev cloud (IoT bridge, credentials provider, cloud API, update server), checked by the real fortctl. */
describe('fortctl doctor', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud;
  let agent: Supervised;
  let cloudStopped = false;
  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { fortId: 'fort-dev-1', iot: true, cloudAuth: true });
    dev = await testDevCloud(pki, { ports: inst.layout.ports, mender: { port: inst.layout.ports.updates } });
    // The deployment manager of a fort configured by hand: the dev update server, the device certificate.
    const dm = parse(readFileSync(inst.files.dm, 'utf8'));
    const authKey = join(inst.dir, 'mender-auth.pem');
    writeSecretFile(
      authKey,
      generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    );
    dm['updates'] = {
      install_root: 'opt',
      staging_dir: 'staging',
      device_type: 'fort-test',
      server: {
        url: `https://127.0.0.1:${inst.layout.ports.updates}`,
        tls: { ca: pki.cloudServer.ca, cert: pki.cloudDevice.deviceCert, key: pki.cloudDevice.deviceKey },
        auth_key: authKey,
        id_data: { fort_id: 'fort-dev-1' },
      },
    };
    writeFileSync(inst.files.dm, stringify(dm));
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(30_000);
    const tls = {
      ca: readFileSync(pki.trustZone.ca),
      cert: readFileSync(pki.trustZone.fortctlCert),
      key: readFileSync(pki.trustZone.fortctlKey),
    };
    const health = () =>
      httpsRequest(`https://127.0.0.1:${inst.layout.ports.admin}/admin/v1/health`, tls).then(
        (r) => JSON.parse(r.body) as { status: string },
      );
    await eventually(
      async () => ((await health()).status === 'healthy' ? true : undefined),
      20_000,
      'the agent healthy (IoT link up)',
    );
  });
  afterAll(async () => {
    await agent?.stop();
    if (!cloudStopped) await dev?.stop();
    inst?.cleanup();
  });

  /** A variant of agent.toml beside it (its relative paths stay valid). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a parsed config edited field by field
  type ConfigTree = Record<string, any>;
  const agentVariant = (name: string, edit: (c: ConfigTree) => void): string => {
    const c = parse(readFileSync(inst.files.agent, 'utf8')) as ConfigTree;
    edit(c);
    const file = join(inst.dir, name);
    writeFileSync(file, stringify(c));
    return file;
  };

  const doctor = (args: string[] = [], env: Record<string, string> = {}) =>
    run(
      process.execPath,
      [
        FORTCTL,
        '-c',
        inst.files.fortctl,
        'doctor',
        '--agent-config',
        inst.files.agent,
        '--dm-config',
        inst.files.dm,
        '--timeout',
        '3',
        ...args,
      ],
      { env: { ...process.env, ...NO_PROXY_ENV, ...env } },
    ).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout + e.stderr }),
    );

  const line = (stdout: string, name: string) =>
    stdout.split('\n').find((l) => l.replace(/^\[\w+\] /, '').startsWith(`${name}: `));

  it('passes every check of a healthy installation (exit 0)', async () => {
    const r = await doctor();
    expect(r.stdout).not.toMatch(/^\[(warn|FAIL)\]/m);
    expect(r.code).toBe(0);
    const ports = inst.layout.ports;
    expect(line(r.stdout, 'config agent.toml')).toBe(`[ok] config agent.toml: valid (${inst.files.agent})`);
    expect(line(r.stdout, 'config deployment-manager.toml')).toMatch(/^\[ok\]/);
    expect(line(r.stdout, 'config fortctl.toml')).toMatch(/^\[ok\]/);
    expect(line(r.stdout, 'pairing')).toBe('[ok] pairing: configured as fort-dev-1 in agent.toml (not paired)');
    for (const role of ['admin API', 'client API', 'IoT device', 'deployment manager', 'update device', 'fortctl']) {
      expect(line(r.stdout, `certificate ${role}`)).toMatch(
        /^\[ok\] certificate [\w ]+: CN=[^,]+, key private and matching, expires \d{4}-\d\d-\d\d \(\d+ days left\)$/,
      );
    }
    expect(line(r.stdout, 'key cloud client')).toBe(`[ok] key cloud client: ${pki.jwt.privateKey} private`);
    expect(line(r.stdout, 'key update auth')).toMatch(/^\[ok\]/);
    expect(line(r.stdout, 'admin API')).toMatch(
      new RegExp(
        `^\\[ok\\] admin API: https://127\\.0\\.0\\.1:${ports.admin}: agent fort-dev-1 version \\S+ healthy, up \\d+ s$`,
      ),
    );
    expect(line(r.stdout, 'dns')).toBe('[ok] dns: nothing to resolve: every endpoint is an IP address');
    const ca = pki.cloudServer.ca;
    expect(line(r.stdout, 'IoT endpoint')).toMatch(
      new RegExp(
        `^\\[ok\\] IoT endpoint: https://127\\.0\\.0\\.1:${ports.iot}: TLS verified against CA ${ca} \\(server CN=[\\w.-]+\\); HTTP \\d+ in \\d+ ms$`,
      ),
    );
    expect(line(r.stdout, 'credentials provider')).toMatch(
      new RegExp(
        `^\\[ok\\] credentials provider: https://127\\.0\\.0\\.1:${ports.credentials}: TLS verified against CA ${ca} .*, client certificate accepted; HTTP 404`,
      ),
    );
    expect(line(r.stdout, 'cloud API')).toMatch(
      new RegExp(`^\\[ok\\] cloud API: https://127\\.0\\.0\\.1:${ports.cloud}: TLS verified`),
    );
    expect(line(r.stdout, 'update server')).toMatch(
      new RegExp(
        `^\\[ok\\] update server: https://127\\.0\\.0\\.1:${ports.updates}: TLS verified .*, client certificate accepted`,
      ),
    );
    expect(line(r.stdout, 'clock')).toMatch(
      /^\[ok\] clock: \S+, after the build date \d{4}-\d\d-\d\d; within [01] s of the IoT endpoint, the credentials provider, the cloud API, the update server$/,
    );
  });

  it('--json gives the same checks as data', async () => {
    const r = await doctor(['--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { ok: boolean; checks: { name: string; level: string; detail: string }[] };
    expect(out.ok).toBe(true);
    expect(out.checks.find((c) => c.name === 'cloud API')).toMatchObject({
      level: 'ok',
      detail: expect.stringContaining('TLS verified'),
    });
  });

  it('FAILs an endpoint whose certificate does not chain to the configured CA, and a client certificate the server does not trust (exit 1)', async () => {
    const wrong = agentVariant('agent-wrong-ca.toml', (c) => {
      c['iot']['ca'] = pki.trustZone.ca;
      c['iot']['credentials']['tls'] = {
        ca: pki.cloudServer.ca,
        cert: pki.trustZone.fortctlCert,
        key: pki.trustZone.fortctlKey,
      };
    });
    const r = await doctor(['--agent-config', wrong]);
    expect(r.code).toBe(1);
    expect(line(r.stdout, 'IoT endpoint')).toMatch(
      new RegExp(
        `^\\[FAIL\\] IoT endpoint: https://127\\.0\\.0\\.1:${inst.layout.ports.iot}: certificate signed by unknown authority \\(\\w+\\); trusting CA ${pki.trustZone.ca}$`,
      ),
    );
    expect(line(r.stdout, 'credentials provider')).toMatch(
      /^\[FAIL\] credentials provider: \S+: (the server does not trust our client certificate|the server hung up right after the TLS handshake: it refused our client certificate)/,
    );
    expect(line(r.stdout, 'cloud API')).toMatch(/^\[ok\]/);
  });

  it('FAILs "config" naming the field of a malformed agent.toml (exit 1), and still checks the rest', async () => {
    const bad = join(inst.dir, 'agent-bad.toml');
    writeFileSync(bad, readFileSync(inst.files.agent, 'utf8').replace(/^port = (\d+)$/m, 'port = "eighty"'));
    const r = await doctor(['--agent-config', bad]);
    expect(r.code).toBe(1);
    expect(line(r.stdout, 'config agent.toml')).toBe(
      '[FAIL] config agent.toml: agent-bad.toml: admin.port: expected integer 1..65535, got "eighty"',
    );
    expect(line(r.stdout, 'admin API')).toMatch(/^\[ok\]/);
    expect(line(r.stdout, 'update server')).toMatch(/^\[ok\]/);
  });

  it('FAILs a host name that does not resolve, for DNS and for the endpoint', async () => {
    const unresolvable = agentVariant('agent-bad-host.toml', (c) => {
      c['cloud']['url'] = `https://fort-doctor-test.invalid:${inst.layout.ports.cloud}`;
    });
    const r = await doctor(['--agent-config', unresolvable]);
    expect(r.code).toBe(1);
    expect(line(r.stdout, 'dns fort-doctor-test.invalid')).toMatch(
      /^\[FAIL\] dns fort-doctor-test\.invalid: does not resolve: .* \(cloud API\)$/,
    );
    expect(line(r.stdout, 'cloud API')).toMatch(/^\[FAIL\] cloud API: https:\/\/fort-doctor-test\.invalid:\d+: /);
  });

  it('goes through HTTPS_PROXY when it is set, verifying each endpoint end to end inside the tunnel', async () => {
    const proxy = await startTinyproxy();
    try {
      const r = await doctor([], { HTTPS_PROXY: proxy.url });
      expect(r.stdout).not.toMatch(/^\[(warn|FAIL)\]/m);
      expect(line(r.stdout, 'proxy agent')).toBe(`[ok] proxy agent: http://127.0.0.1:${proxy.port}`);
      expect(line(r.stdout, 'proxy deployment manager')).toBe(
        `[ok] proxy deployment manager: http://127.0.0.1:${proxy.port}`,
      );
      expect(line(r.stdout, 'dns')).toBe('[ok] dns: nothing to resolve: every endpoint is an IP address');
      for (const name of ['IoT endpoint', 'credentials provider', 'cloud API', 'update server'])
        expect(line(r.stdout, name)).toMatch(
          new RegExp(`^\\[ok\\] ${name}: \\S+ through proxy 127\\.0\\.0\\.1:${proxy.port}: TLS verified`),
        );
      const { iot, credentials, cloud, updates } = inst.layout.ports;
      expect(proxy.connects().sort()).toEqual([iot, credentials, cloud, updates].map((p) => `127.0.0.1:${p}`).sort());
    } finally {
      await proxy.stop();
    }
  });

  it('FAILs every cloud endpoint once the cloud is down, saying the connection was refused', async () => {
    await dev.stop();
    cloudStopped = true;
    const r = await doctor();
    expect(r.code).toBe(1);
    for (const name of ['IoT endpoint', 'credentials provider', 'cloud API', 'update server'])
      expect(line(r.stdout, name)).toMatch(
        new RegExp(
          `^\\[FAIL\\] ${name}: https://127\\.0\\.0\\.1:\\d+: connection refused \\(nothing listens there\\) \\(ECONNREFUSED\\)`,
        ),
      );
    expect(line(r.stdout, 'admin API')).toMatch(/^\[(ok|warn)\] admin API: /);
    expect(line(r.stdout, 'clock')).toMatch(/^\[ok\] clock: .*no server answered with a Date header/);
  });
});
