import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from '../../../helpers/fort.js';
import { startUpdatableFort, type UpdatableFort } from '../../../helpers/update-fort.js';
import { stepGates } from '../../../helpers/step-gates.js';

const KILLS_PER_STEP = 3;

/**
 * kill -9 of the deployment manager in every state of an update, three times each. Gates
 * (blocking operator hooks, test/helpers/step-gates.ts) give the test the exact moment to kill. After every kill the fort must run a
 * complete release, the old one or the new one; at the end the server's status must match
 * the release that runs.
 */
describe('update survives kill -9 of the deployment manager in every state', () => {
  let fort: UpdatableFort;
  const gates = stepGates(KILLS_PER_STEP);
  const killsAt: Record<string, number> = {};

  beforeAll(async () => {
    fort = await startUpdatableFort({ healthDeadlineSeconds: 8, updatesToml: `hooks_dir = "${gates.hooksDir}"\n` });
  });
  afterAll(async () => {
    await fort?.stop();
    gates.cleanup();
  });

  /** Every release directory is whole, and `current` points at one of the two the update is between. */
  function assertConsistent(from: string, to: string) {
    const current = fort.current();
    expect([from, to]).toContain(current);
    for (const name of readdirSync(join(fort.root, 'releases')).filter((n) => !n.startsWith('.'))) {
      expect(existsSync(join(fort.root, 'releases', name, 'dist/agent/main.js')), `releases/${name} is complete`).toBe(
        true,
      );
      expect(JSON.parse(readFileSync(join(fort.root, 'releases', name, 'package.json'), 'utf8')).version).toBe(name);
    }
  }

  /** Kills the deployment manager each time a hook blocks, restarts it, until the deployment is finished. */
  async function driveWithKills(deploymentId: string, from: string, to: string) {
    for (;;) {
      const next = await eventually(
        () => {
          const gate = gates.blocked();
          if (gate) return gate;
          const d = fort.dev.mender.deployment(deploymentId)?.devices[0];
          return d && ['success', 'failure'].includes(d.status) && fort.state().step === 'idle'
            ? { done: d.status }
            : undefined;
        },
        60_000,
        'a hook to block or the deployment to finish',
      );
      if ('done' in next) return next.done;
      const { step, marker } = next;
      expect(fort.state().step).toBe(step); // persisted before the hook ran
      fort.dm!.kill('SIGKILL');
      await fort.dm!.stop();
      gates.kill(marker);
      killsAt[step] = (killsAt[step] ?? 0) + 1;
      assertConsistent(from, to);
      await fort.startDm();
    }
  }

  it('a good release: killed 3 times in each of downloading … committed, it ends committed and reported once', async () => {
    const steps = ['downloading', 'verifying', 'installing', 'switching', 'health_checking', 'committed'];
    gates.arm(steps);
    const id = await fort.deploy(fort.release('1.0.1'));
    expect(await driveWithKills(id, '1.0.0', '1.0.1')).toBe('success');
    for (const s of steps) expect(killsAt[s], s).toBe(KILLS_PER_STEP);
    await fort.agentOn('1.0.1');
    expect(fort.current()).toBe('1.0.1');
    expect(fort.state()).toMatchObject({ step: 'idle', installed: '1.0.1', previous: '1.0.0', reports: [] });
    const history = fort.dev.mender.deployment(id)!.devices[0]!.history.map((h) => h.status);
    expect(history.filter((s) => s === 'success')).toHaveLength(1);
    expect(readdirSync(fort.stagingDir), 'staging left behind').toEqual([]);
  });

  it('a release that never becomes healthy: killed 3 times in rolling_back and in failed, it ends on the old release with failure', async () => {
    const steps = ['rolling_back', 'failed'];
    gates.arm(steps);
    const id = await fort.deploy(fort.release('1.0.2', { broken: true }));
    expect(await driveWithKills(id, '1.0.1', '1.0.2')).toBe('failure');
    for (const s of steps) expect(killsAt[s], s).toBe(KILLS_PER_STEP);
    await fort.agentOn('1.0.1');
    expect(fort.current()).toBe('1.0.1');
    expect(fort.state()).toMatchObject({ step: 'idle', installed: '1.0.1', reports: [] });
    const device = fort.dev.mender.deployment(id)!.devices[0]!;
    expect(device.history.filter((h) => h.status === 'failure')).toHaveLength(1);
    expect(device.log.map((l) => l.message)).toEqual([
      'the agent did not report healthy on 1.0.2 within 8 s',
      'rolled back to 1.0.1',
    ]);
  });

  it('a partial unpack a kill -9 left is removed when the deployment manager starts', async () => {
    const leftover = join(fort.root, 'releases', '.unpack-4242-1700000000000.partial');
    mkdirSync(join(leftover, 'dist'), { recursive: true });
    writeFileSync(join(leftover, 'dist', 'half.js'), '');
    fort.dm!.kill('SIGKILL');
    await fort.dm!.stop();
    await fort.startDm();
    await eventually(() => (existsSync(leftover) ? undefined : true), 20_000, 'the leftover removed');
    expect(readdirSync(join(fort.root, 'releases')).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('killed mid-download: after the restart it resumes from the bytes on disk instead of starting over', async () => {
    gates.arm([]);
    const from = fort.current();
    const release = fort.release('1.0.3');
    const artifact = await fort.dev.mender.upload(release.artifact);
    const CUT = 50_000;
    expect(artifact.size).toBeGreaterThan(4 * CUT);
    fort.dev.mender.stallAfterBytes(CUT);
    const id = fort.dev.mender.deploy({ artifactName: release.artifactName, devices: fort.fortId }).id;
    const staged = join(fort.stagingDir, `${id}.mender`);
    await eventually(
      () => (existsSync(staged) && statSync(staged).size === CUT ? true : undefined),
      30_000,
      'the first 50 kB on disk',
    );
    expect(fort.state()).toMatchObject({ step: 'downloading', deployment: { id } });
    fort.dm!.kill('SIGKILL');
    await fort.dm!.stop();
    fort.dev.mender.releaseStalls();
    assertConsistent(from, '1.0.3');
    await fort.startDm();
    expect((await fort.finished(id)).status).toBe('success');
    const downloads = fort.dev.mender.downloads({ artifactId: artifact.id });
    expect(downloads.map((d) => [d.range, d.bytesSent])).toEqual([
      [null, CUT],
      [`bytes=${CUT}-`, artifact.size - CUT],
    ]);
    await fort.agentOn('1.0.3');
  });
});
