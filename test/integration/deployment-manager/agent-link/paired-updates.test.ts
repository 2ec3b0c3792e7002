import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { PkiPaths } from '../../../../lib/pki/layout.js';
import type { Supervised } from '../../../../scripts/supervisor/process.js';
import { httpsCall, httpsRequest } from '../../../helpers/https.js';
import {
  DIST,
  eventually,
  startAgent,
  startDeploymentManager,
  testInstallation,
  testPki,
  type TestInstallation,
} from '../../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../../helpers/dev-cloud.js';

const run = promisify(execFile);

describe('deployment manager of a paired fort: its own device certificate through the agent, then the update server', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud;
  let agent: Supervised;
  let dm: Supervised;
  const identityDir = () => join(inst.layout.dataDir, 'deployment-manager', 'update-identity');
  beforeAll(async () => {
    pki = await testPki();
    // Neither process has an identity: the agent pairs, the DM asks the agent for its own.
    inst = await testInstallation(pki, { paired: true });
    const q = JSON.stringify;
    const root = join(inst.dir, 'opt');
    mkdirSync(root, { recursive: true });
    appendFileSync(
      inst.files.dm,
      `\n[updates]\ninstall_root = ${q(root)}\nstaging_dir = ${q(join(inst.dir, 'staging'))}\ndevice_type = "fort-test"\n[updates.paired]\npoll_seconds = 1\ninventory_seconds = 1\nretry_seconds = 1\n`,
    );
    dev = await testDevCloud(pki, { ports: inst.layout.ports });
    agent = await startAgent(inst.files.agent, { restart: true, restartDelayMs: 100 });
    await agent.waitReady(30_000);
    dm = await startDeploymentManager(inst.files.dm);
    await dm.waitReady(30_000);
  });
  afterAll(async () => {
    await dm?.stop();
    await agent?.stop();
    await dev.stop();
    inst.cleanup();
  });

  it('waits while the fort is unpaired, then gets its certificate, is admitted and polls; revoking the fort refuses that certificate too, and the DM drops it', async () => {
    await eventually(
      () =>
        dm.stdout.some((l) => l.includes('no update identity yet: the fort is not paired yet')) ? true : undefined,
      10_000,
      'the DM waiting for pairing',
    );
    const code = dev.pairing.codes.issue('t1', 600).code;
    const paired = await run(process.execPath, [
      join(DIST, 'fortctl/main.js'),
      '-c',
      inst.files.fortctl,
      'pair',
      '--cloud',
      dev.apiUrl,
      '--code',
      code,
      '--wait',
      '60',
    ]);
    const fortId = /^paired as (\S+) /.exec(paired.stdout)![1]!;

    // Its own key (0600, not the agent's) and a certificate naming the fort, obtained through the agent.
    await eventually(
      () => (dm.stdout.some((l) => l.includes('update identity obtained through the agent')) ? true : undefined),
      20_000,
      'the DM update identity',
    );
    expect(statSync(join(identityDir(), 'device.key')).mode & 0o777).toBe(0o600);
    const agentKey = readFileSync(join(inst.layout.dataDir, 'agent', 'pairing', 'device.key'));
    expect(readFileSync(join(identityDir(), 'device.key')).equals(agentKey)).toBe(false);
    expect(JSON.parse(readFileSync(join(identityDir(), 'identity.json'), 'utf8'))).toMatchObject({
      fort_id: fortId,
      update_url: dev.mender.url,
    });

    await dev.mender.waitFor(
      () => dev.mender.devices().find((d) => d.identity['fort_id'] === fortId),
      20_000,
      'the DM asking the update server to be admitted',
    );
    dev.mender.accept(fortId);
    await dev.mender.waitFor(
      () => dev.mender.device(fortId).lastPollAt,
      20_000,
      'a deployment poll of the admitted DM',
    );

    const tls = {
      ca: dev.ca,
      cert: readFileSync(join(identityDir(), 'device.pem')),
      key: readFileSync(join(identityDir(), 'device.key')),
    };
    expect((await httpsCall(dev.apiUrl, dev.ca, 'POST', `/dev/v1/forts/${fortId}/revoke`)).status).toBe(200);
    const refused = await httpsRequest(`${dev.mender.url}/api/devices/v1/authentication/auth_requests`, tls, 'POST');
    expect(refused.status).toBe(401);
    expect(refused.body).toContain('device certificate revoked');
    // The DM's admitted identity refused from now on: dropped, and a new one asked for (which the
    // cloud refuses a revoked fort) instead of knocking with a dead certificate forever.
    await eventually(
      () =>
        dm.stdout.some((l) => l.includes('the update server refuses the identity it had admitted')) ? true : undefined,
      20_000,
      'the DM dropping its refused identity',
    );
    await eventually(() => (existsSync(identityDir()) ? undefined : true), 10_000, 'the identity directory gone');
  });
});
