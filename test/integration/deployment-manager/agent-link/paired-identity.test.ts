import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, chownSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, eventually, jsonLines } from '../../../helpers/fort.js';
import { startUpdatableFort, type UpdatableFort } from '../../../helpers/update-fort.js';

/**
 * The deployment manager of a paired fort ([updates.paired]): what it trusts comes from its own
 * root-owned config, never from what the agent relays, and its identity at the update server
 * follows the fort's (unpair, pair again).
 */

const identity = (fort: UpdatableFort) => {
  const dir = fort.identityDir;
  const json = JSON.parse(readFileSync(join(dir, 'identity.json'), 'utf8')) as { fort_id: string };
  return { fortId: json.fort_id, serial: new X509Certificate(readFileSync(join(dir, 'device.pem'))).serialNumber };
};

/** Waits until the DM holds an identity of `fortId`, then until the server has it asking to be admitted, and admits it. */
async function admit(fort: UpdatableFort, fortId: string) {
  const id = await eventually(
    () =>
      existsSync(join(fort.identityDir, 'identity.json')) && identity(fort).fortId === fortId
        ? identity(fort)
        : undefined,
    30_000,
    `the DM identity of ${fortId}`,
  );
  const pending = () =>
    fort.dev.mender
      .devices()
      .find((d) => d.identity['fort_id'] === fortId && d.authSets.some((s) => s.status === 'pending'));
  await fort.dev.mender.waitFor(pending, 20_000, `${fortId} asking the update server to be admitted`);
  const accepted = Date.now();
  fort.dev.mender.accept(fortId);
  return { ...id, accepted };
}

const polledSince = (fort: UpdatableFort, fortId: string, since: number) =>
  fort.dev.mender.waitFor(
    () => {
      const at = fort.dev.mender.device(fortId).lastPollAt;
      return at && Date.parse(at) >= since ? at : undefined;
    },
    20_000,
    `a deployment poll of ${fortId}`,
  );

describe('a paired deployment manager verifies artifacts only with the keys of its own config', () => {
  let fort: UpdatableFort;
  beforeAll(async () => {
    // The cloud sends the signing key's public half at pairing; the DM's config lists no key.
    fort = await startUpdatableFort({ paired: true, artifactKeys: false });
    const fortId = await fort.pair();
    await admit(fort, fortId);
  }, 120_000);
  afterAll(async () => {
    await fort?.stop();
  });

  it('with no artifact_keys it refuses an artifact signed with the key the cloud sent at pairing: failure reported, nothing installed', async () => {
    const release = fort.release('1.0.1');
    const id = await fort.deploy(release);
    expect((await fort.finished(id)).status).toBe('failure');
    await eventually(() => (fort.state().step === 'idle' ? true : undefined), 10_000, 'the DM idle again');
    expect(fort.state()).toMatchObject({ installed: '1.0.0' });
    expect(fort.state().lastError).toMatch(/no public key is configured/);
    expect(existsSync(join(fort.root, 'releases', '1.0.1'))).toBe(false);
    expect(fort.current()).toBe('1.0.0');
    // Nor is the pairing's key kept beside the identity.
    expect(readdirSync(fort.identityDir).filter((n) => n.includes('artifact'))).toEqual([]);
  }, 120_000);

  it('refuses to start with an artifact key file writable by others or owned by another user (exit 78, the file named)', async () => {
    const toml = readFileSync(fort.inst.files.dm, 'utf8');
    writeFileSync(
      fort.inst.files.dm,
      toml.replace(/^health_deadline_seconds = /m, `artifact_keys = ["${fort.signPub}"]\nhealth_deadline_seconds = `),
    );
    const start = () =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        // One that starts runs on: killed after 15 s, code null.
        const dm = execFile(
          process.execPath,
          [join(DIST, 'deployment-manager/main.js'), '--config', fort.inst.files.dm],
          { timeout: 15_000 },
          (err, _out, stderr) =>
            resolve({ code: dm.killed ? null : typeof err?.code === 'number' ? err.code : 0, stderr }),
        );
      });
    try {
      chmodSync(fort.signPub, 0o666);
      const writable = await start();
      expect(writable.code).toBe(78);
      expect(writable.stderr).toContain(`${fort.signPub}: artifact key is writable by group or others (mode 0666)`);
      chmodSync(fort.signPub, 0o644);
      chownSync(fort.signPub, 12345, 0);
      const foreign = await start();
      expect(foreign.code).toBe(78);
      expect(foreign.stderr).toContain(`${fort.signPub}: artifact key is owned by uid 12345`);
    } finally {
      chmodSync(fort.signPub, 0o644);
      chownSync(fort.signPub, 0, 0);
    }
  }, 60_000);

  it('with the key in its own config it installs', async () => {
    // The config now lists the key (above); the DM restarted on it keeps its identity and admission.
    await fort.dm!.stop();
    await fort.startDm();
    const release = fort.release('1.0.2');
    const id = await fort.deploy(release);
    expect((await fort.finished(id)).status).toBe('success');
    await fort.agentOn('1.0.2');
    expect(fort.current()).toBe('1.0.2');
  }, 120_000);
});

describe('a paired deployment manager follows the fort identity through unpair and a new pairing', () => {
  let fort: UpdatableFort;
  beforeAll(async () => {
    // Polls an hour apart: what it does after admission happens at once, not at the next poll.
    fort = await startUpdatableFort({ paired: true, pollSeconds: 3600, inventorySeconds: 3600, retrySeconds: 1 });
  }, 120_000);
  afterAll(async () => {
    await fort?.stop();
  });

  it('a new fort id: a new certificate, admitted as the new fort, which gets its deployment', async () => {
    const first = await fort.pair();
    const one = await admit(fort, first);
    await polledSince(fort, first, one.accepted);

    await fort.unpair();
    const second = await fort.pair();
    expect(second).not.toBe(first);
    // Pending at the server with its new identity: a deployment waits for it there.
    const release = fort.release('1.0.1');
    await fort.dev.mender.upload(release.artifact);
    await fort.dev.mender.waitFor(
      () => fort.dev.mender.devices().find((d) => d.identity['fort_id'] === second),
      30_000,
      'the new fort asking to be admitted',
    );
    const deployment = fort.dev.mender.deploy({ artifactName: release.artifactName, devices: second }).id;
    const two = await admit(fort, second);
    expect(two.serial).not.toBe(one.serial);
    // The old certificate is revoked with the old fort: only the new one gets this far.
    expect((await fort.finished(deployment, 60_000)).status).toBe('success');
    expect(fort.dm!.stdout.some((l) => l.includes('update identity discarded'))).toBe(true);
  }, 180_000);

  it('the same fort id paired again: a new certificate, and it polls with it', async () => {
    const id = fort.fortId;
    const before = identity(fort);
    await fort.unpair();
    // The DM drops the old fort's identity once it sees the agent unpaired (nothing to renew until paired).
    await eventually(
      () => (existsSync(join(fort.identityDir, 'identity.json')) ? undefined : true),
      20_000,
      'the DM dropping the unpaired identity',
    );
    expect(await fort.pair(id)).toBe(id);
    const after = await admit(fort, id);
    expect(after.serial).not.toBe(before.serial);
    await polledSince(fort, id, after.accepted);
  }, 120_000);
});

describe('a paired deployment manager renews its update certificate by itself (certificates of 40 s)', () => {
  let fort: UpdatableFort;
  beforeAll(async () => {
    fort = await startUpdatableFort({ paired: true, deviceCertSeconds: 40 });
    await admit(fort, await fort.pair());
  }, 120_000);
  afterAll(async () => {
    await fort?.stop();
  });

  it('past two thirds of its life a new certificate replaces the old one, and it polls with it', async () => {
    const fortId = fort.fortId;
    const before = identity(fort);
    const cert = new X509Certificate(readFileSync(join(fort.identityDir, 'device.pem')));
    const renewed = await eventually(
      () =>
        existsSync(join(fort.identityDir, 'identity.json')) && identity(fort).serial !== before.serial
          ? Date.now()
          : undefined,
      60_000,
      'a renewed update certificate',
    );
    const from = Date.parse(cert.validFrom);
    expect(renewed).toBeGreaterThanOrEqual(from + ((Date.parse(cert.validTo) - from) * 2) / 3 - 1000);
    expect(identity(fort).fortId).toBe(fortId);
    // The DM logs the renewal after writing the files: the line may reach this pipe a moment later.
    await eventually(
      () =>
        jsonLines(fort.dm!.stdout).some(
          (l) => l['msg'] === 'update certificate renewed (two thirds of its life had passed)',
        ) || undefined,
      10_000,
      "the DM's renewal log line",
    );
    // Still admitted (same device, same auth key): it polls with the new certificate.
    await polledSince(fort, fortId, renewed);
    expect(fort.dm!.starts).toBe(1);
  }, 120_000);
});
