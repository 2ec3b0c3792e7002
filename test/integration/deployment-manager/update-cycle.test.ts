import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { appendFileSync, cpSync, createReadStream, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { startSupervised, type Supervised } from '../../../scripts/supervisor/process.js';
import { buildRelease } from '../../../scripts/release.js';
import { unpackRelease } from '../../../deployment-manager/install/unpack.js';
import { switchCurrent } from '../../../deployment-manager/install/current.js';
import { httpsRequest } from '../../helpers/https.js';
import { eventually, REPO, startDeploymentManager, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';

const FORT = 'fort-dev-1';
const DEVICE_TYPE = 'fort-test';

/**
 * A whole update on loopback: release 1.0.1 built and signed with the real mender-artifact,
 * uploaded to the dev update server and deployed; the deployment manager (mutual TLS) downloads,
 * verifies, installs, switches `current`, has the agent restarted (a supervisor standing in for
 * systemd's Restart=always) and health-checks it; the server sees success and the inventory.
 */
describe('update cycle (deployment manager, dev update server, real agent)', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud;
  let agent: Supervised;
  let dm: Supervised;
  let root: string;
  let out: string;

  /** The fort's end of a deployment as the server recorded it, once it is success or failure. */
  const finished = (deploymentId: string) =>
    dev.mender.waitFor(() => {
      const d = dev.mender.deployment(deploymentId)?.devices[0];
      return d && ['success', 'failure'].includes(d.status) ? d : undefined;
    }, 90_000, 'the deployment to finish');
  const health = async () => {
    const res = await httpsRequest(`https://127.0.0.1:${inst.layout.ports.admin}/admin/v1/health`, { ca: readFileSync(pki.trustZone.ca), cert: readFileSync(pki.trustZone.fortctlCert), key: readFileSync(pki.trustZone.fortctlKey) });
    return JSON.parse(res.body) as { status: string; version: string };
  };

  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { fortId: FORT });
    root = join(inst.dir, 'opt');
    out = join(inst.dir, 'out');
    mkdirSync(root, { recursive: true });
    // The releases carry no node_modules here; Node finds the repository's from <root>/node_modules.
    symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'));
    execFileSync('openssl', ['genrsa', '-traditional', '-out', join(inst.dir, 'sign.pem'), '2048'], { stdio: 'ignore' });
    execFileSync('openssl', ['rsa', '-in', join(inst.dir, 'sign.pem'), '-pubout', '-out', join(inst.dir, 'sign.pub.pem')], { stdio: 'ignore' });
    const first = buildRelease({ version: '1.0.0', deviceType: DEVICE_TYPE, out, nodeModules: false, repo: REPO });
    await unpackRelease(createReadStream(first.tarball), join(root, 'releases'), { maxBytes: 1 << 30, maxEntries: 100_000 });
    switchCurrent(root, '1.0.0');

    dev = await testDevCloud(pki, { ports: inst.layout.ports });
    agent = await startSupervised({ name: 'agent', script: join(root, 'current/dist/agent/main.js'), args: ['--config', inst.files.agent], restart: true, restartDelayMs: 100 });
    await agent.waitReady(20_000);
    expect((await health()).version).toBe('1.0.0');

    appendFileSync(
      inst.files.dm,
      `\n[updates]\ninstall_root = "${root}"\nstaging_dir = "${join(inst.dir, 'data/dm/staging')}"\ndevice_type = "${DEVICE_TYPE}"\nartifact_keys = ["${join(inst.dir, 'sign.pub.pem')}"]\nhealth_deadline_seconds = 10\n` +
        `[updates.server]\nurl = "${dev.mender.url}"\nauth_key = "${join(inst.dir, 'data/dm/mender-auth.pem')}"\nid_data = { fort_id = "${FORT}" }\npoll_seconds = 1\ninventory_seconds = 1\nretry_seconds = 1\n` +
        `tls = { ca = "${pki.cloudServer.ca}", cert = "${pki.cloudDevice.deviceCert}", key = "${pki.cloudDevice.deviceKey}" }\n`,
    );
    dm = await startDeploymentManager(inst.files.dm);
    await dm.waitReady(20_000);
    // Admission: the device asks (pending) until the operator accepts it.
    await dev.mender.waitFor(() => dev.mender.devices().find((d) => d.identity['fort_id'] === FORT), 20_000, 'the device asking to be admitted');
    dev.mender.accept(FORT);
  });
  afterAll(async () => {
    await dm?.stop();
    await agent?.stop();
    await dev?.stop();
    inst?.cleanup();
  });

  it('installs a signed 1.0.1: the agent restarts on it, the server records success and the inventory shows it', async () => {
    const release = buildRelease({ version: '1.0.1', deviceType: DEVICE_TYPE, key: join(inst.dir, 'sign.pem'), out, nodeModules: false, repo: REPO });
    await dev.mender.upload(release.artifact);
    const deployment = dev.mender.deploy({ artifactName: release.artifactName, devices: FORT });
    const done = await finished(deployment.id);
    expect(done.status).toBe('success');
    expect(done.history.map((h) => h.status)).toEqual(expect.arrayContaining(['downloading', 'installing', 'rebooting', 'success']));
    expect((await health()).version).toBe('1.0.1');
    expect(readlinkSync(join(root, 'current'))).toBe(join('releases', '1.0.1'));
    const inventory = await eventually(() => {
      const inv = dev.mender.device(FORT).inventory;
      return inv['fort_version'] === '1.0.1' ? inv : undefined;
    }, 20_000, 'the inventory to show 1.0.1');
    expect(inventory).toMatchObject({ artifact_name: 'fort-1.0.1', device_type: DEVICE_TYPE });
  });

  it('refuses an artifact signed with another key before anything is installed, and reports why', async () => {
    execFileSync('openssl', ['genrsa', '-traditional', '-out', join(inst.dir, 'rogue.pem'), '2048'], { stdio: 'ignore' });
    const release = buildRelease({ version: '1.0.7', deviceType: DEVICE_TYPE, key: join(inst.dir, 'rogue.pem'), out: join(inst.dir, 'rogue-out'), nodeModules: false, repo: REPO });
    await dev.mender.upload(release.artifact);
    const done = await finished(dev.mender.deploy({ artifactName: release.artifactName, devices: FORT }).id);
    expect(done.status).toBe('failure');
    expect(done.log.map((l) => l.message)).toEqual(['manifest.sig: signature does not verify with the configured key']);
    expect(readdirSync(join(root, 'releases'))).not.toContain('1.0.7');
    expect(readlinkSync(join(root, 'current'))).toBe(join('releases', '1.0.1'));
    expect((await health()).version).toBe('1.0.1');
  });

  it('resumes a download cut three times from where it stopped (the server saw the ranges), then installs it', async () => {
    const release = buildRelease({ version: '1.0.3', deviceType: DEVICE_TYPE, key: join(inst.dir, 'sign.pem'), out, nodeModules: false, repo: REPO });
    const artifact = await dev.mender.upload(release.artifact);
    for (const n of [50_000, 50_000, 50_000]) dev.mender.dropAfterBytes(n);
    const done = await finished(dev.mender.deploy({ artifactName: release.artifactName, devices: FORT }).id);
    expect(done.status).toBe('success');
    const ranges = dev.mender.downloads({ artifactId: artifact.id }).map((d) => d.range);
    expect(ranges[0]).toBeNull();
    // Three cuts, three resumes, each from further along.
    expect(ranges).toHaveLength(4);
    const offsets = ranges.slice(1).map((r) => Number(/^bytes=(\d+)-$/.exec(r ?? '')?.[1]));
    expect(offsets.every((o, i) => o > 0 && (i === 0 || o > offsets[i - 1]!))).toBe(true);
    expect((await health()).version).toBe('1.0.3');
  });

  it('rolls back automatically when the new release never becomes healthy, and reports failure with a log', async () => {
    // A release whose agent dies at start: built from a copy of dist with main.js replaced.
    const broken = join(inst.dir, 'broken-repo');
    cpSync(join(REPO, 'dist'), join(broken, 'dist'), { recursive: true, filter: (src) => !src.startsWith(join(REPO, 'dist', 'test')) });
    cpSync(join(REPO, 'package.json'), join(broken, 'package.json'));
    writeFileSync(join(broken, 'dist/agent/main.js'), 'process.exit(3);\n');
    const release = buildRelease({ version: '1.0.2', deviceType: DEVICE_TYPE, key: join(inst.dir, 'sign.pem'), out, nodeModules: false, repo: broken });
    await dev.mender.upload(release.artifact);
    const deployment = dev.mender.deploy({ artifactName: release.artifactName, devices: FORT });
    const done = await finished(deployment.id);
    expect(done.status).toBe('failure');
    expect(done.log.map((l) => l.message)).toEqual(['the agent did not report healthy on 1.0.2 within 10 s', 'rolled back to 1.0.3']);
    expect(readlinkSync(join(root, 'current'))).toBe(join('releases', '1.0.3'));
    expect(await eventually(async () => ((await health().catch(() => undefined))?.version === '1.0.3' ? true : undefined), 30_000, 'the agent back on 1.0.3')).toBe(true);
    // The operator's view of it.
    const status = await eventually(() => {
      const out = execFileSync(process.execPath, [join(REPO, 'dist/deployment-manager/cli.js'), 'status', '--config', inst.files.dm], { encoding: 'utf8' });
      return out.startsWith('step        idle') ? out : undefined;
    }, 10_000, 'the state machine back to idle');
    expect(status).toContain('installed   1.0.3 (fort-1.0.3)\n');
    expect(status).toContain('why         idle; the last update failed: the agent did not report healthy on 1.0.2 within 10 s\n');
  });

  it('refuses an update server whose certificate is from another CA: no request reaches it', async () => {
    // The same deployment manager config, but trusting the trust-zone root for the update server.
    const rogueConfig = join(inst.dir, 'dm-rogue.toml');
    writeFileSync(rogueConfig, readFileSync(inst.files.dm, 'utf8').replace(`ca = "${pki.cloudServer.ca}"`, `ca = "${pki.trustZone.ca}"`).replace(/path = "[^"]*state.json"/, `path = "${join(inst.dir, 'rogue-state.json')}"`));
    const attemptsBefore = dev.mender.authAttempts().length;
    const rogue = await startDeploymentManager(rogueConfig);
    try {
      await rogue.waitReady(20_000);
      await eventually(() => (rogue.stdout.some((l) => l.includes('update cycle did not complete') && /certificate|self.signed|verify/i.test(l)) ? true : undefined), 20_000, 'the refusal in the log');
      expect(dev.mender.authAttempts().length).toBe(attemptsBefore);
    } finally {
      await rogue.stop();
    }
  });
});
