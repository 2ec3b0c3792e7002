import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, createPublicKey, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { DeviceDeployment } from '../../../dev-cloud/mender/deployments.js';
import { tempDir, testPki } from '../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import { buildArtifact, rsaKeyPair } from '../../helpers/mender.js';
import { startMenderClient, type MenderClientProcess } from '../../helpers/mender-client.js';

/**
 * The dev update server against the real device side: Debian's Mender client 3.4 (`mender
 * daemon`, its `single-file` update module), so that the server keeps serving what a real client
 * sends (shared/PROTOCOLS.md "Mender device API"), not only what our deployment manager sends.
 */
const DEVICE = 'mender-real-1';
const DEVICE_TYPE = 'fort-test';

describe("the dev update server with Debian's Mender client 3.4", () => {
  let pki: PkiPaths;
  let dev: TestDevCloud;
  let dir: string;
  let destDir: string;
  let client: MenderClientProcess;
  const payload = randomBytes(256 * 1024);

  beforeAll(async () => {
    pki = await testPki();
    dev = await testDevCloud(pki);
    dir = tempDir('mender-client');
    destDir = join(dir, 'installed');
    const sign = rsaKeyPair(dir, 'sign');
    const other = rsaKeyPair(dir, 'other');
    const files = join(dir, 'files');
    mkdirSync(files);
    writeFileSync(join(files, 'dest_dir'), destDir);
    writeFileSync(join(files, 'filename'), 'payload.bin');
    writeFileSync(join(files, 'payload.bin'), payload);
    for (const [name, key] of [
      ['real-1', sign.private],
      ['real-2', sign.private],
      ['badsig-1', other.private],
    ] as const)
      await dev.mender.upload(
        buildArtifact({
          dir: files,
          name,
          deviceType: DEVICE_TYPE,
          payloadType: 'single-file',
          payloadFile: ['dest_dir', 'filename', 'payload.bin'].map((f) => join(files, f)),
          sign: { key },
        }),
      );
    client = await startMenderClient({
      dir: join(dir, 'client'),
      serverUrl: dev.mender.url,
      serverCa: pki.cloudServer.ca,
      cert: pki.cloudDevice.deviceCert,
      key: pki.cloudDevice.deviceKey,
      artifactVerifyKey: sign.public,
      deviceType: DEVICE_TYPE,
      identity: { fort_id: DEVICE, mac: '02:00:00:00:00:01' },
      artifactName: 'factory-1',
      pollSeconds: 1,
      inventorySeconds: 1,
      retrySeconds: 1,
    });
  });

  afterAll(async () => {
    await client?.stop();
    await dev?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const deployed = async (artifactName: string): Promise<DeviceDeployment> => {
    const id = dev.mender.deploy({ artifactName, devices: DEVICE }).id;
    return dev.mender.waitFor(
      () => {
        const d = dev.mender.deployment(id)?.devices[0];
        return d?.finishedAt ? d : undefined;
      },
      30_000,
      `the deployment of ${artifactName}`,
    );
  };
  const statuses = (d: DeviceDeployment) => [...new Set(d.history.map((h) => h.status))];

  it('is admitted: its auth request is signed with its TLS key, then it reports inventory and polls', async () => {
    const device = await dev.mender.waitFor(
      () => dev.mender.devices().find((d) => d.identity['fort_id'] === DEVICE),
      20_000,
      'the client asking to be admitted',
    );
    // 3.4 signs with HttpsClient.Key when no Security.AuthPrivateKey is set (no key of its own).
    const spki = createPublicKey(readFileSync(pki.cloudDevice.deviceKey)).export({ type: 'spki', format: 'der' });
    expect(device.authSets[0]!.keyFingerprint).toBe(createHash('sha256').update(spki).digest('hex'));
    expect(device.identity).toEqual({ fort_id: DEVICE, mac: '02:00:00:00:00:01' });
    dev.mender.accept(DEVICE);
    const polled = await dev.mender.waitFor(
      () => {
        const d = dev.mender.device(DEVICE);
        return d.lastPollAt && d.inventory['mender_client_version'] ? d : undefined;
      },
      20_000,
      'a poll and an inventory report',
    );
    expect(polled.provides).toEqual({ artifact_name: 'factory-1', device_type: DEVICE_TYPE });
    expect(polled.inventory).toMatchObject({ artifact_name: 'factory-1', device_type: DEVICE_TYPE });
  });

  it('installs a signed artifact: downloading, installing, success, and the file is in place', async () => {
    const d = await deployed('real-1');
    expect(statuses(d)).toEqual(['pending', 'downloading', 'installing', 'success']);
    expect(readFileSync(join(destDir, 'payload.bin')).equals(payload)).toBe(true);
    await dev.mender.waitFor(
      () => dev.mender.device(DEVICE).provides?.['artifact_name'] === 'real-1',
      10_000,
      'a poll from the new artifact',
    );
  });

  it('answers already-installed to a deployment of the artifact it runs', async () => {
    const d = await deployed('real-1');
    expect(statuses(d)).toEqual(['pending', 'already-installed']);
  });

  it('fails an artifact signed with another key, and its deployment log (sent after the status) is kept', async () => {
    const d = await deployed('badsig-1');
    expect(statuses(d)).toEqual(['pending', 'downloading', 'failure']);
    const log = await dev.mender.waitFor(
      () => {
        const l = dev.mender.deployments({ device: DEVICE }).find((x) => x.artifactName === 'badsig-1')!.devices[0]!
          .log;
        return l.length > 0 ? l : undefined;
      },
      10_000,
      'the deployment log',
    );
    expect(log.some((l) => l.level === 'error' && /signature/.test(l.message))).toBe(true);
    // Still on the last good artifact: the next one installs.
    expect(statuses(await deployed('real-2'))).toEqual(['pending', 'downloading', 'installing', 'success']);
  });
});
