import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, jsonLines } from '../../../helpers/fort.js';
import { startTinyproxy, type Tinyproxy } from '../../../helpers/tinyproxy.js';
import { startUpdatableFort, type UpdatableFort } from '../../../helpers/update-fort.js';

/**
 * The deployment manager's link to the update server misbehaving: the server vanishing right
 * after the new release went live, and the link going through an HTTP CONNECT proxy. Asserted
 * on what the server recorded, the persisted state, the `current` symlink and the DM's log.
 */

const NOT_DELIVERED = 'status report not delivered; retrying later';
const CYCLE_INCOMPLETE = 'update cycle did not complete; retrying later';

interface Report {
  deploymentId: string;
  status: string;
}

/** The deployment manager's log lines with message `msg`, from line `from` on. */
function logged(fort: UpdatableFort, msg: string, from = 0): Record<string, unknown>[] {
  return jsonLines(fort.dm!.stdout.slice(from)).filter((l) => l['msg'] === msg);
}

/** Statuses the server recorded for the fort's part of a deployment, oldest first. */
function history(fort: UpdatableFort, deploymentId: string): string[] {
  return fort.dev.mender.deployment(deploymentId)?.devices[0]?.history.map((h) => h.status) ?? [];
}

const reports = (fort: UpdatableFort) => fort.state().reports as Report[];

describe('update server unreachable right after the switch', () => {
  let fort: UpdatableFort;

  beforeAll(async () => {
    fort = await startUpdatableFort();
  });
  afterAll(async () => {
    await fort?.dev.mender.goOnline().catch(() => undefined);
    await fort?.stop();
  });

  it('the release stays committed and `success` is delivered once the server is back', async () => {
    const mender = fort.dev.mender;
    const id = await fort.deploy(fort.release('1.0.1'));
    // Checked on every change the server records, so it goes away before the next report.
    await mender.waitFor(() => history(fort, id).includes('rebooting'), 60_000, 'the server to record rebooting');
    await mender.goOffline();
    expect(history(fort, id)).not.toContain('success');

    await fort.agentOn('1.0.1');
    const committed = await eventually(
      () => {
        const s = fort.state();
        return s.step === 'idle' &&
          s.installed === '1.0.1' &&
          (s.reports as Report[]).some((r) => r.deploymentId === id && r.status === 'success')
          ? s
          : undefined;
      },
      30_000,
      'the DM idle on 1.0.1 with the success report queued',
    );
    expect(committed).toMatchObject({ installed: '1.0.1', previous: '1.0.0', lastError: null, deployment: null });

    // Several deliveries fail while the release is committed: it stays.
    const mark = fort.dm!.stdout.length;
    const failures = await eventually(
      () => {
        const w = logged(fort, NOT_DELIVERED, mark).filter((l) => l['deploymentId'] === id);
        return w.length >= 2 ? w : undefined;
      },
      30_000,
      'two failed status deliveries after the commit',
    );
    expect(failures.map((l) => String(l['reason']))).toEqual(failures.map(() => expect.stringMatching(/ECONNREFUSED/)));
    expect(fort.current()).toBe('1.0.1');
    expect(fort.state()).toMatchObject({ step: 'idle', installed: '1.0.1', previous: '1.0.0', lastError: null });
    expect(reports(fort)).toContainEqual(expect.objectContaining({ deploymentId: id, status: 'success' }));
    expect((await fort.health()).version).toBe('1.0.1');
    expect(history(fort, id)).not.toContain('success');

    await mender.goOnline();
    const done = await fort.finished(id, 30_000);
    expect(done.status).toBe('success');
    const statuses = history(fort, id);
    expect(statuses).not.toContain('failure');
    expect(statuses.at(-1)).toBe('success');
    expect(statuses.indexOf('rebooting')).toBeLessThan(statuses.indexOf('success'));
    await eventually(() => (reports(fort).length === 0 ? true : undefined), 10_000, 'the report queue to empty');
    expect(fort.current()).toBe('1.0.1');
    expect(fort.state()).toMatchObject({ step: 'idle', installed: '1.0.1' });
  }, 120_000);
});

describe('update link through an HTTP CONNECT proxy (tinyproxy)', () => {
  let proxy: Tinyproxy;
  let fort: UpdatableFort;

  beforeAll(async () => {
    proxy = await startTinyproxy();
    fort = await startUpdatableFort({ startDm: false });
    // Only the proxy variables steer it: HTTPS_PROXY (lower case ones would win) and no exemptions.
    await fort.startDm({ env: { HTTPS_PROXY: proxy.url, https_proxy: '', NO_PROXY: '', no_proxy: '' } });
    await fort.dev.mender.waitFor(
      () => fort.dev.mender.devices().find((d) => d.identity['fort_id'] === fort.fortId),
      20_000,
      'the device asking to be admitted',
    );
    fort.dev.mender.accept(fort.fortId);
  });
  afterAll(async () => {
    await fort?.stop();
    await proxy?.stop();
  });

  it('updates through the proxy: mutual TLS to the update server inside the CONNECT tunnel', async () => {
    const release = fort.release('1.0.1');
    const done = await fort.finished(await fort.deploy(release));
    expect(done.status).toBe('success');
    await fort.agentOn('1.0.1');
    expect(fort.current()).toBe('1.0.1');

    // Every CONNECT went to the update server's port (API calls and the artifact download);
    // the agent's admin API on loopback is not proxied.
    const target = `127.0.0.1:${fort.dev.mender.port}`;
    const connects = await eventually(
      () => (proxy.connects().length > 0 ? proxy.connects() : undefined),
      10_000,
      'CONNECTs in the tinyproxy log',
    );
    expect(new Set(connects)).toEqual(new Set([target]));
    // The server saw the device certificate through the tunnel.
    const cn = /CN=([^\n,]+)/.exec(new X509Certificate(readFileSync(fort.pki.cloudDevice.deviceCert)).subject)?.[1];
    const artifact = fort.dev.mender.artifacts().find((a) => a.name === release.artifactName);
    const downloads = fort.dev.mender.downloads({ artifactId: artifact!.id });
    expect(downloads.length).toBeGreaterThan(0);
    expect(downloads.map((d) => d.clientCn)).toEqual(downloads.map(() => cn));
  }, 120_000);

  it('with the proxy down: a proxy error in the log, the deployment untouched, nothing installed', async () => {
    await proxy.stop();
    const mark = fort.dm!.stdout.length;
    const id = await fort.deploy(fort.release('1.0.2'));
    const errors = await eventually(
      () => {
        const e = logged(fort, CYCLE_INCOMPLETE, mark).filter((l) =>
          String(l['reason']).startsWith(`proxy 127.0.0.1:${proxy.port}: `),
        );
        return e.length >= 2 ? e : undefined;
      },
      30_000,
      'the proxy error in the DM log (twice)',
    );
    expect(String(errors[0]!['reason'])).toMatch(/ECONNREFUSED/);
    expect(history(fort, id)).toEqual(['pending']);
    expect(existsSync(join(fort.root, 'releases', '1.0.2'))).toBe(false);
    expect(fort.current()).toBe('1.0.1');
    expect(fort.state()).toMatchObject({ step: 'idle', installed: '1.0.1', deployment: null });
    expect((await fort.health()).version).toBe('1.0.1');
  }, 60_000);
});

describe('a device the server has not accepted yet', () => {
  let fort: UpdatableFort;
  afterAll(async () => {
    await fort?.stop();
  });

  it('asks again every retry_seconds, not once per (long) poll interval', async () => {
    fort = await startUpdatableFort({ startDm: false, pollSeconds: 3600, inventorySeconds: 3600, retrySeconds: 1 });
    await fort.startDm();
    const mine = () => fort.dev.mender.authAttempts().filter((a) => JSON.stringify(a).includes(fort.fortId));
    const attempts = await eventually(
      () => (mine().length >= 3 ? mine() : undefined),
      15_000,
      'three admission requests',
    );
    expect(attempts.length).toBeGreaterThanOrEqual(3);
    expect(fort.state().step).toBe('idle');
  });

  it('once admitted, asks for its deployment and sends its inventory in that cycle, not a (long) poll or inventory interval later', async () => {
    const accepted = Date.now();
    fort.dev.mender.accept(fort.fortId);
    // Well under poll_seconds and inventory_seconds (3600): a few retry intervals.
    const device = await eventually(
      () => {
        const d = fort.dev.mender.device(fort.fortId);
        return d.lastPollAt && Date.parse(d.lastPollAt) >= accepted && d.inventory['artifact_name'] ? d : undefined;
      },
      10_000,
      'a deployment poll and the inventory of the admitted device',
    );
    expect(device.inventory).toMatchObject({
      artifact_name: 'fort-1.0.0',
      fort_version: '1.0.0',
      device_type: fort.deviceType,
    });
  });
});
