import { afterAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { lstatSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { DIST, REPO, eventually, tempDir } from '../../helpers/fort.js';
import { httpsCall, httpsRequest } from '../../helpers/https.js';
import { MIGRATIONS } from '../../../agent/store/migrations.js';
import { createCsr } from '../../../lib/pki/certs.js';

const run = promisify(execFile);
/** The last line of the ready banner: once it is read, all of the banner is. */
const BANNER_END = '  Ctrl-C stops everything.';

/** A command the ready banner prints (`npm run <script> -- <args>`), run as npm runs it after its build. */
function bannerCommand(lines: readonly string[], label: string) {
  const line = lines.find((l) => l.startsWith(`    ${label} `));
  const m = line && /npm run (dev-cloud|release) -- (.+)$/.exec(line);
  if (!m) throw new Error(`no "${label}" command in the banner:\n${lines.join('\n')}`);
  return run(
    process.execPath,
    [join(DIST, m[1] === 'release' ? 'scripts/release.js' : 'dev-cloud/cli.js'), ...m[2]!.trim().split(/\s+/)],
    { cwd: REPO },
  );
}

/** Every stack started, so a failed test still stops them. */
const stacks: { proc: ChildProcess; exited: Promise<number | null> }[] = [];

/** Start the dev stack as `npm start` does (the build already ran) and wait for its ready banner. */
function startStack(home: string) {
  const proc = spawn(process.execPath, [join(DIST, 'scripts/dev-stack.js'), '--home', home], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  createInterface({ input: proc.stdout }).on('line', (l) => lines.push(l));
  createInterface({ input: proc.stderr }).on('line', (l) => lines.push(`stderr: ${l}`));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dev stack not ready within 60 s:\n${lines.join('\n')}`)), 60_000);
    const check = setInterval(() => {
      if (lines.includes(BANNER_END)) {
        clearTimeout(timer);
        clearInterval(check);
        resolve();
      }
    }, 50);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      clearInterval(check);
      reject(new Error(`dev stack exited ${code} before ready:\n${lines.join('\n')}`));
    });
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  stacks.push({ proc, exited });
  return { proc, lines, ready, exited };
}

describe('dev stack (npm start)', () => {
  const home = tempDir('devstack');
  afterAll(async () => {
    // A failed assertion leaves its stack running: Ctrl-C it, so its processes do not outlive the test.
    for (const s of stacks) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGINT');
    await Promise.all(stacks.map((s) => s.exited));
    rmSync(home, { recursive: true, force: true });
  });

  it('reaches ready from nothing, fortctl status prints healthy, updates the agent through the dev update server, Ctrl-C stops everything, a second start reuses the PKI', async () => {
    const stack = startStack(home);
    await stack.ready;
    const index = JSON.parse(readFileSync(join(home, 'dev-cloud.json'), 'utf8')) as {
      agent: { clientApi: string; adminApi: string };
      cloud: { url: string };
      ca: Record<string, string>;
      config: { fortctl: string; agent: string; deploymentManager: string };
      certs: { fortctl: { cert: string; key: string } };
      updates: { url: string; deviceType: string; signingKey: string; verifyKey: string };
    };
    expect(Object.keys(index.ca).sort()).toEqual(['clientZone', 'cloudDevice', 'cloudServer', 'trustZone']);
    expect(index.agent.adminApi).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(stack.lines).toContain(
      `  try:                         npm run fortctl -- --config ${join(home, 'fortctl.toml')} status`,
    );

    // Updates: the agent runs from <home>/opt/current → releases/0.1.0, a link to this repository.
    expect(index.updates).toMatchObject({
      url: expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+$/),
      deviceType: 'fort-dev',
      signingKey: join(home, 'pki/artifact-signing.key'),
    });
    expect(statSync(index.updates.signingKey).mode & 0o777).toBe(0o600);
    expect(readFileSync(index.updates.signingKey, 'utf8')).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/); // PKCS#1, as mender-artifact wants
    expect(readlinkSync(join(home, 'opt/current'))).toBe('releases/0.1.0');
    expect(realpathSync(join(home, 'opt/releases/0.1.0'))).toBe(realpathSync(REPO));
    expect(stack.lines).toContain(
      `    build a signed release     npm run release -- --version 0.1.1 --device-type fort-dev --key ${index.updates.signingKey} --out ${join(home, 'releases')} --no-node-modules`,
    );
    // The deployment manager asks the dev update server for admission on its first cycle.
    const menderCli = async (...args: string[]) =>
      (await run(process.execPath, [join(DIST, 'dev-cloud/cli.js'), 'mender', ...args, '--home', home, '--json']))
        .stdout;
    await eventually(
      async () => {
        const devices = JSON.parse(await menderCli('devices')) as { identity: { fort_id?: string }; status: string }[];
        return devices.find((d) => d.identity.fort_id === 'fort-dev-1' && d.status === 'pending');
      },
      20_000,
      'fort-dev-1 pending at the dev update server',
    );
    expect((await bannerCommand(stack.lines, 'accept the device')).stdout).toMatch(
      /"fort_id":"fort-dev-1"\}: accepted\n$/,
    );
    expect((await bannerCommand(stack.lines, 'build a signed release')).stdout).toMatch(
      /artifact fort-0\.1\.1: .*fort-0\.1\.1\.mender \(signed\)/,
    );

    const status = await run(process.execPath, [
      join(DIST, 'fortctl/main.js'),
      '--config',
      index.config.fortctl,
      'status',
    ]);
    expect(status.stdout).toMatch(/^agent fort-dev-1 {2}version 0\.1\.0 {2}healthy/);
    expect(status.stdout).toMatch(new RegExp(`store +ready +schema v${MIGRATIONS.at(-1)!.version}\n`));
    // The identity came by pairing: none of it is in the config files the stack wrote.
    expect(stack.lines.some((l) => l.startsWith('dev-stack: paired the fort as fort-dev-1 '))).toBe(true);
    expect(status.stdout).toMatch(/pairing +ready +paired as fort-dev-1 \(tenant t1\)/);
    expect(readFileSync(index.config.agent, 'utf8')).not.toMatch(/^\[(fort|iot|cloud|api\.auth)\]/m);
    expect(readFileSync(index.config.deploymentManager, 'utf8')).toMatch(/^\[updates\.paired\]/m);
    const json = await run(process.execPath, [
      join(DIST, 'fortctl/main.js'),
      '--config',
      index.config.fortctl,
      '--json',
      'status',
    ]);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'healthy', ready: true });

    const cloud = await httpsRequest(`${index.cloud.url}/health`, { ca: readFileSync(index.ca['cloudServer']!) });
    expect(cloud.status).toBe(200);
    const api = await httpsRequest(`${index.agent.clientApi}/health`, { ca: readFileSync(index.ca['clientZone']!) });
    expect(api.status).toBe(200);
    expect(statSync(join(home, 'pki/trust-zone/ca.key')).mode & 0o777).toBe(0o600);

    // The demo app: registered at start, its first reload queued; its rows reach a signed-in user.
    expect(stack.lines).toContain('dev-stack: registered the demo app demo-sales and queued its first reload');
    const reloadsCli = () =>
      run(process.execPath, [
        join(DIST, 'dev-cloud/cli.js'),
        'reloads',
        '--home',
        home,
        '--app',
        'demo-sales',
        '--json',
      ]);
    const succeeded = await eventually(
      async () => {
        const list = JSON.parse((await reloadsCli()).stdout) as { type: string; data: { rows?: number } }[];
        return list.find((r) => r.type === 'reload.succeeded');
      },
      30_000,
      'the demo app reload.succeeded at the dev cloud',
    );
    expect(succeeded.data.rows).toBe(3040); // 3000 orders + 40 customers
    const login = await httpsCall(index.cloud.url, readFileSync(index.ca['cloudServer']!), 'POST', '/dev/v1/login', {
      json: { user: 'alice', tenant: 't1' },
    });
    const token = (login.json() as { token: string }).token;
    const page = await httpsCall(
      index.agent.clientApi,
      readFileSync(index.ca['clientZone']!),
      'GET',
      '/api/v1/apps/demo-sales/tables/orders/rows?limit=10',
      { headers: { authorization: `Bearer ${token}` } },
    );
    // Loaded and served by fort-engine: typed cells, keyset pages.
    const rowsPage = page.json() as { columns: string[]; rows: unknown[][]; total: number; next: string | null };
    expect(rowsPage).toMatchObject({
      columns: ['id', 'order_date', 'region', 'product', 'customer', 'quantity', 'amount', 'paid'],
      total: 3000,
    });
    // The quoted product with a comma came through whole.
    expect(rowsPage.rows[0]).toEqual([1, '2025-04-22', 'Nordics', 'Widget, large', 'Iris Foods', 8, 276, true]);
    expect(rowsPage.next).toEqual(expect.any(String));
    const caBefore = readFileSync(index.ca['trustZone']!);

    // Pairing on the dev cloud from its CLI: a code, a fort paired with it, listed, revoked.
    const devCloudCli = async (...args: string[]) =>
      (await run(process.execPath, [join(DIST, 'dev-cloud/cli.js'), ...args, '--home', home])).stdout;
    const code = (await devCloudCli('pairing-code', '--tenant', 't1', '--ttl', '10m')).trim();
    expect(code).toMatch(/^([A-Z2-7]{4}-){7}[A-Z2-7]{4}$/);
    const csr = await createCsr('dev-stack');
    const jwtKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    const paired = await httpsCall(index.cloud.url, readFileSync(index.ca['cloudServer']!), 'POST', '/api/v1/pairing', {
      json: { code, tenant: 't1', jwt_public_key: jwtKey, csr: csr.csrPem },
    });
    expect(paired.status).toBe(201);
    const fortId = (paired.json() as { fort_id: string }).fort_id;
    expect(await devCloudCli('forts')).toContain(`${fortId}  t1  paired `);
    expect(await devCloudCli('revoke', '--fort', fortId)).toMatch(new RegExp(`^${fortId} revoked at `));

    // The update, deployed with the banner's commands; the DM picks it up at its next poll (10 s).
    expect((await bannerCommand(stack.lines, 'upload it')).stdout).toMatch(/^uploaded fort-0\.1\.1 \(fort-dev\)/);
    expect((await bannerCommand(stack.lines, 'deploy it')).stdout).toMatch(
      /^deployment \S+: fort-0\.1\.1 to 1 device\(s\)/,
    );
    const adminTls = {
      ca: readFileSync(index.ca['trustZone']!),
      cert: readFileSync(index.certs.fortctl.cert),
      key: readFileSync(index.certs.fortctl.key),
    };
    await eventually(
      async () => {
        const res = await httpsRequest(`${index.agent.adminApi}/admin/v1/health`, adminTls);
        return res.status === 200 && (JSON.parse(res.body) as { version: string }).version === '0.1.1'
          ? true
          : undefined;
      },
      25_000,
      'the agent healthy on 0.1.1',
    );
    await eventually(
      async () => {
        const deployments = JSON.parse(await menderCli('status')) as {
          artifactName: string;
          devices: { status: string }[];
        }[];
        return deployments.find((d) => d.artifactName === 'fort-0.1.1')?.devices[0]?.status === 'success'
          ? true
          : undefined;
      },
      10_000,
      'the deployment reported success',
    );
    expect((await bannerCommand(stack.lines, 'follow it')).stdout).toMatch(/fort-0\.1\.1 +fort-dev-1 +success /);
    expect(readlinkSync(join(home, 'opt/current'))).toBe('releases/0.1.1');
    expect(lstatSync(join(home, 'opt/releases/0.1.1')).isDirectory()).toBe(true); // unpacked, not a link
    // The previous release is kept (rollback target), still the link: the repository is untouched.
    expect(lstatSync(join(home, 'opt/releases/0.1.0')).isSymbolicLink()).toBe(true);
    expect(statSync(join(REPO, 'dist/agent/main.js')).isFile()).toBe(true);

    stack.proc.kill('SIGINT');
    expect(await stack.exited).toBe(0);
    expect(stack.lines).toContain('dev-stack: stopped');
    for (const name of ['dev-cloud', 'agent', 'deployment-manager'])
      expect(stack.lines).toContain(`[${name}] exited (code 0, signal null)`);
    await expect(
      run(process.execPath, [join(DIST, 'fortctl/main.js'), '--config', index.config.fortctl, 'status']),
    ).rejects.toMatchObject({ code: 2 });

    const second = startStack(home);
    await second.ready;
    expect(second.lines.some((l) => l.startsWith('dev-stack: generating PKI'))).toBe(false);
    expect(readFileSync(index.ca['trustZone']!)).toEqual(caBefore);
    // The updated release is what runs after a restart, and the banner suggests the next one.
    const again = await run(process.execPath, [
      join(DIST, 'fortctl/main.js'),
      '--config',
      index.config.fortctl,
      'status',
    ]);
    expect(again.stdout).toMatch(/^agent fort-dev-1 {2}version 0\.1\.1 {2}healthy/);
    expect(second.lines.some((l) => l.includes('npm run release -- --version 0.1.2 '))).toBe(true);
    second.proc.kill('SIGINT');
    expect(await second.exited).toBe(0);
  }, 120_000);
});
