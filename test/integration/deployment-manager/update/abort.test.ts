import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, jsonLines } from '../../../helpers/fort.js';
import { stepGates } from '../../../helpers/step-gates.js';
import { startUpdatableFort, type UpdatableFort } from '../../../helpers/update-fort.js';

/**
 * An operator aborts a deployment on the update server while the fort works on it: the next
 * status report gets 409. Before the switch the update stops with nothing installed; after the
 * switch the fort rolls back to the release it ran. Either way no failure is reported: the
 * server asked for it.
 */
describe('an aborted deployment (409 to a status report)', () => {
  let fort: UpdatableFort;
  const gates = stepGates(1);

  beforeAll(async () => {
    fort = await startUpdatableFort({ updatesToml: `hooks_dir = "${gates.hooksDir}"\n` });
  });
  afterAll(async () => {
    await fort?.stop();
    gates.cleanup();
  });

  const idleAfter = (deploymentId: string) =>
    eventually(
      () => {
        const s = fort.state();
        return s.step === 'idle' && s.reports.length === 0 && s.lastError !== null ? s : undefined;
      },
      60_000,
      `the fort to give up deployment ${deploymentId}`,
    );

  it('aborted after the switch: the report of the switch gets 409 and the fort rolls back to the release it ran', async () => {
    gates.arm(['switching']);
    const id = await fort.deploy(fort.release('1.0.1'));
    const gate = await eventually(() => gates.blocked(), 30_000, 'the update to reach the switch');
    fort.dev.mender.abort(id);
    gates.open(gate.marker);
    const s = await idleAfter(id);
    expect(s).toMatchObject({ installed: '1.0.0', lastError: 'aborted' });
    expect(fort.current()).toBe('1.0.0');
    await fort.agentOn('1.0.0');
    const device = fort.dev.mender.deployment(id)!.devices[0]!;
    expect(device.status).toBe('aborted');
    expect(device.history.map((h) => h.status)).not.toContain('failure');
    // It had switched before it heard of the abort, and went back through rolling_back.
    const steps = jsonLines(fort.dm!.stdout)
      .filter((l) => l['msg'] === 'update step' && l['deploymentId'] === id)
      .map((l) => l['step']);
    expect(steps).toEqual(expect.arrayContaining(['health_checking', 'rolling_back', 'failed']));
    expect(steps.indexOf('health_checking')).toBeLessThan(steps.indexOf('rolling_back'));
  });

  it('aborted while downloading: the update stops at the next report, nothing is installed', async () => {
    gates.arm([]);
    const release = fort.release('1.0.2');
    const artifact = await fort.dev.mender.upload(release.artifact);
    fort.dev.mender.stallAfterBytes(50_000);
    const id = fort.dev.mender.deploy({ artifactName: release.artifactName, devices: fort.fortId }).id;
    await fort.dev.mender.waitFor(
      () => fort.dev.mender.downloads({ artifactId: artifact.id }).find((d) => d.bytesSent >= 50_000),
      30_000,
      'the download to stall',
    );
    fort.dev.mender.abort(id);
    fort.dev.mender.releaseStalls();
    const s = await idleAfter(id);
    expect(s).toMatchObject({ installed: '1.0.0', lastError: `deployment ${id} was aborted on the update server` });
    expect(readdirSync(join(fort.root, 'releases'))).not.toContain('1.0.2');
    expect(existsSync(join(fort.stagingDir, `${id}.mender`))).toBe(false);
    expect(fort.current()).toBe('1.0.0');
    expect(fort.dev.mender.deployment(id)!.devices[0]!.status).toBe('aborted');
  });
});
