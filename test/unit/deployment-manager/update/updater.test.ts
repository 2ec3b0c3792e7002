import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pino } from 'pino';
import { createUpdater, type UpdaterDeps, type UpdateServer } from '../../../../deployment-manager/update/updater.js';
import { createStateFile, type UpdateState } from '../../../../deployment-manager/update/state.js';
import { FortError } from '../../../../lib/errors.js';
import { tempDir } from '../../../helpers/fort.js';

const log = pino({ level: 'silent' });

/**
 * The update state machine against fakes of everything it drives: what a real server, agent and
 * file system would do, recorded so the tests can assert the order of effects.
 */
function harness(
  opts: {
    healthyOn?: (v: string) => boolean;
    verifyFails?: string;
    serverDown?: () => boolean;
    abortOn?: string;
    hooks?: UpdaterDeps['hooks'];
  } = {},
) {
  const dir = tempDir('updater');
  const stateFile = createStateFile(join(dir, 'state.json'));
  const initial: UpdateState = {
    ...stateFile.load(),
    installed: '1.0.0',
    installedArtifact: 'fort-1.0.0',
    previous: null,
  };
  stateFile.save(initial);
  const effects: string[] = [];
  const delivered: string[] = [];
  let current = '1.0.0';
  let running = '1.0.0';
  let deployment: { id: string; name: string } | undefined = { id: 'd1', name: 'fort-1.0.1' };
  const server: UpdateServer = {
    async nextDeployment(installed) {
      effects.push(`next(${installed})`);
      return (
        deployment && {
          id: deployment.id,
          artifact: { artifact_name: deployment.name, source: { uri: 'https://u/dl' }, device_types_compatible: ['t'] },
        }
      );
    },
    async reportStatus(id, status) {
      if (opts.serverDown?.())
        throw new FortError('FORT_ERR_UPDATE_SERVER', 'update server: connect ECONNREFUSED', { fatal: false });
      if (opts.abortOn === status)
        throw new FortError('FORT_ERR_DEPLOYMENT_ABORTED', `deployment ${id} was aborted on the update server`, {
          fatal: false,
        });
      delivered.push(`${id}:${status}`);
    },
    async uploadLog(id, messages) {
      if (opts.serverDown?.())
        throw new FortError('FORT_ERR_UPDATE_SERVER', 'update server: connect ECONNREFUSED', { fatal: false });
      delivered.push(`${id}:log(${messages.length})`);
    },
  };
  const deps = (state: UpdateState): UpdaterDeps => ({
    state: stateFile,
    initial: state,
    server,
    download: async (d, onProgress) => {
      effects.push(`download(${d.artifactFile})`);
      onProgress(2 * 1024 * 1024);
    },
    verify: async (d) => {
      effects.push('verify');
      if (opts.verifyFails) throw new FortError('FORT_ERR_ARTIFACT', opts.verifyFails, { fatal: false });
      return { artifactName: d.artifactName, payload: join(dir, 'payload.tgz') };
    },
    unpack: async () => {
      effects.push('unpack');
      return { version: '1.0.1' };
    },
    switchTo: (v) => {
      effects.push(`switch(${v})`);
      current = v;
    },
    agent: {
      restart: async () => {
        effects.push('restart');
        running = current;
      },
      runs: async (v) => running === v && (opts.healthyOn?.(v) ?? true),
    },
    discard: () => undefined,
    keepReleases: (vs) => void effects.push(`keep(${vs.join(',')})`),
    hooks: opts.hooks,
    healthDeadlineMs: 50,
    healthPollMs: 5,
    log,
  });
  return {
    dir,
    stateFile,
    effects,
    delivered,
    get current() {
      return current;
    },
    clearDeployment: () => (deployment = undefined),
    updater: (state = stateFile.load()) => createUpdater(deps(state)),
  };
}

describe('update state machine', () => {
  it('runs a deployment to commit: download, verify, install, switch, health check, in order, with reports', async () => {
    const h = harness();
    const u = h.updater();
    expect(await u.poll((id) => join(h.dir, `${id}.mender`))).toBe('started');
    await u.runToIdle();
    await u.deliverReports();
    expect(h.effects).toEqual([
      'next(fort-1.0.0)',
      `download(${join(h.dir, 'd1.mender')})`,
      'verify',
      'unpack',
      'switch(1.0.1)',
      'restart',
      'keep(1.0.1,1.0.0)',
    ]);
    expect(h.delivered).toEqual(['d1:downloading', 'd1:installing', 'd1:rebooting', 'd1:success']);
    expect(u.state).toMatchObject({
      step: 'idle',
      installed: '1.0.1',
      installedArtifact: 'fort-1.0.1',
      previous: '1.0.0',
      deployment: null,
      reports: [],
      lastError: null,
    });
  });

  it('rolls back to the previous release when the new agent never reports healthy, and reports failure with a log', async () => {
    const h = harness({ healthyOn: (v) => v !== '1.0.1' });
    const u = h.updater();
    await u.poll((id) => join(h.dir, `${id}.mender`));
    await u.runToIdle();
    await u.deliverReports();
    expect(h.effects.slice(-4)).toEqual(['switch(1.0.1)', 'restart', 'switch(1.0.0)', 'restart']);
    expect(h.current).toBe('1.0.0');
    expect(h.delivered).toEqual(['d1:downloading', 'd1:installing', 'd1:rebooting', 'd1:log(2)', 'd1:failure']);
    expect(u.state).toMatchObject({
      step: 'idle',
      installed: '1.0.0',
      lastError: 'the agent did not report healthy on 1.0.1 within 0.05 s',
    });
  });

  it('refuses an artifact that fails verification before anything is installed', async () => {
    const h = harness({ verifyFails: 'manifest.sig: signature does not verify with the configured key' });
    const u = h.updater();
    await u.poll((id) => join(h.dir, `${id}.mender`));
    await u.runToIdle();
    await u.deliverReports();
    expect(h.effects).not.toContain('unpack');
    expect(h.current).toBe('1.0.0');
    expect(h.delivered).toEqual(['d1:downloading', 'd1:log(1)', 'd1:failure']);
    expect(u.state.lastError).toBe('manifest.sig: signature does not verify with the configured key');
  });

  it('an aborted deployment (409) before the switch stops; after the switch it rolls back', async () => {
    const early = harness({ abortOn: 'downloading' });
    const u1 = early.updater();
    await u1.poll((id) => join(early.dir, `${id}.mender`));
    await u1.deliverReports();
    await u1.runToIdle();
    expect(early.effects).not.toContain('verify');
    expect(u1.state).toMatchObject({
      step: 'idle',
      installed: '1.0.0',
      lastError: 'deployment d1 was aborted on the update server',
    });

    // Aborted once the new release runs: the report of the switch (rebooting) gets the 409.
    const late = harness({ abortOn: 'rebooting' });
    const u2 = late.updater();
    await u2.poll((id) => join(late.dir, `${id}.mender`));
    const save = late.stateFile.save.bind(late.stateFile);
    late.stateFile.save = (s) => {
      const r = save(s);
      if (r.step === 'health_checking') throw new Error('pause here');
      return r;
    };
    await u2.runToIdle().catch((e: Error) => expect(e.message).toBe('pause here'));
    late.stateFile.save = save;
    const resumed = late.updater();
    expect(late.current).toBe('1.0.1');
    await resumed.deliverReports();
    await resumed.runToIdle();
    expect(late.current).toBe('1.0.0');
    expect(resumed.state).toMatchObject({ step: 'idle', installed: '1.0.0', lastError: 'aborted' });
    expect(late.delivered).toEqual(['d1:downloading', 'd1:installing']); // no failure report for an abort the server asked for
  });

  it('resumes from every persisted step after a crash and ends committed exactly once', async () => {
    for (const stopAt of [
      'downloading',
      'verifying',
      'installing',
      'switching',
      'health_checking',
      'committed',
    ] as const) {
      const h = harness();
      const first = h.updater();
      await first.poll((id) => join(h.dir, `${id}.mender`));
      // Simulate a kill -9 right after `stopAt` was persisted: a fresh updater from the file.
      const save = h.stateFile.save.bind(h.stateFile);
      h.stateFile.save = (s) => {
        const r = save(s);
        if (r.step === stopAt) throw new Error('killed');
        return r;
      };
      await first.runToIdle().catch((e: Error) => expect(e.message).toBe('killed'));
      h.stateFile.save = save;
      const resumed = h.updater();
      expect(resumed.state.step).toBe(stopAt); // persisted just before the kill
      await resumed.runToIdle();
      await resumed.deliverReports();
      expect(resumed.state, stopAt).toMatchObject({ step: 'idle', installed: '1.0.1', previous: '1.0.0' });
      expect(h.current, stopAt).toBe('1.0.1');
      expect(
        h.delivered.filter((x) => x === 'd1:success'),
        stopAt,
      ).toHaveLength(1);
    }
  });

  it('keeps a committed release when the server is down, and delivers success when it is back', async () => {
    let down = false;
    const h = harness({ serverDown: () => down });
    const u = h.updater();
    await u.poll((id) => join(h.dir, `${id}.mender`));
    await u.deliverReports();
    down = true;
    await u.runToIdle();
    await u.deliverReports();
    expect(u.state).toMatchObject({
      installed: '1.0.1',
      reports: [{ status: 'installing' }, { status: 'rebooting' }, { status: 'success' }],
    });
    down = false;
    const later = h.updater(); // even across a restart
    await later.deliverReports();
    expect(h.delivered).toEqual(['d1:downloading', 'd1:installing', 'd1:rebooting', 'd1:success']);
    expect(later.state.installed).toBe('1.0.1');
  });

  it('answers already-installed when the deployment is the installed artifact', async () => {
    const h = harness();
    const u = h.updater();
    await u.poll((id) => join(h.dir, `${id}.mender`));
    await u.runToIdle();
    await u.deliverReports();
    h.effects.length = 0;
    expect(await u.poll(() => join(h.dir, 'x'))).toBe('already-installed');
    await u.deliverReports();
    expect(h.delivered.at(-1)).toBe('d1:already-installed');
    expect(h.effects).toEqual(['next(fort-1.0.1)']);
  });

  it('sees an abort (409) during the run itself: the report after the switch gets it and the release is rolled back', async () => {
    const h = harness({ abortOn: 'rebooting' });
    const u = h.updater();
    await u.poll((id) => join(h.dir, `${id}.mender`));
    await u.runToIdle();
    expect(h.effects.slice(-4)).toEqual(['switch(1.0.1)', 'restart', 'switch(1.0.0)', 'restart']);
    expect(u.state).toMatchObject({ step: 'idle', installed: '1.0.0', lastError: 'aborted', reports: [] });
    // The abort is not carried over to the next deployment.
    const again = h.updater();
    await again.poll((id) => join(h.dir, `${id}-2.mender`));
    expect(again.state.step).toBe('downloading');
  });

  it('runs hooks before each step; a failing hook before the switch fails the update, after it is only logged', async () => {
    const seen: string[] = [];
    const vetoed = harness({
      hooks: async (step, ctx) => {
        seen.push(`${step}:${ctx.deploymentId}:${ctx.installed}`);
        if (step === 'installing')
          throw new FortError(
            'FORT_ERR_UPDATE_HOOK',
            'hook installing_10_window exited with status 1: outside the maintenance window',
            { fatal: false },
          );
      },
    });
    const u = vetoed.updater();
    await u.poll((id) => join(vetoed.dir, `${id}.mender`));
    await u.runToIdle();
    expect(seen).toEqual(['downloading:d1:1.0.0', 'verifying:d1:1.0.0', 'installing:d1:1.0.0', 'failed:d1:1.0.0']);
    expect(vetoed.effects).not.toContain('unpack');
    expect(u.state).toMatchObject({
      installed: '1.0.0',
      lastError: 'hook installing_10_window exited with status 1: outside the maintenance window',
    });
    expect(vetoed.delivered).toEqual(['d1:downloading', 'd1:installing', 'd1:log(1)', 'd1:failure']);

    const late = harness({
      hooks: async (step) => {
        if (step === 'health_checking' || step === 'committed')
          throw new FortError('FORT_ERR_UPDATE_HOOK', `hook ${step} exited with status 2`, { fatal: false });
      },
    });
    const u2 = late.updater();
    await u2.poll((id) => join(late.dir, `${id}.mender`));
    await u2.runToIdle();
    expect(u2.state).toMatchObject({ step: 'idle', installed: '1.0.1', lastError: null });
    expect(late.delivered.at(-1)).toBe('d1:success');
  });

  it('installs an operator file under the name its verified header gives, with no reports', async () => {
    const h = harness();
    const u = h.updater();
    u.startFromFile(join(h.dir, 'whatever.mender'));
    await u.runToIdle();
    expect(h.effects).toEqual(['verify', 'unpack', 'switch(1.0.1)', 'restart', 'keep(1.0.1,1.0.0)']);
    expect(u.state).toMatchObject({
      step: 'idle',
      installed: '1.0.1',
      installedArtifact: 'whatever.mender',
      previous: '1.0.0',
      previousArtifact: 'fort-1.0.0',
    });
    expect(h.delivered).toEqual([]);
    expect(() => u.startFromFile('x')).not.toThrow();
    expect(() => u.startFromFile('y')).toThrow(/an update is in progress \(verifying\)/);
  });

  it('rolls back on request to the previous release, health-checked; an unhealthy previous one is rolled forward again', async () => {
    const h = harness();
    const u = h.updater();
    expect(() => u.startRollback()).toThrow('there is no previous release to roll back to');
    await u.poll((id) => join(h.dir, `${id}.mender`));
    await u.runToIdle();
    h.effects.length = 0;
    h.delivered.length = 0;
    expect(u.startRollback()).toBe('1.0.0');
    await u.runToIdle();
    expect(h.effects).toEqual(['switch(1.0.0)', 'restart', 'keep(1.0.0,1.0.1)']);
    expect(u.state).toMatchObject({
      step: 'idle',
      installed: '1.0.0',
      installedArtifact: 'fort-1.0.0',
      previous: '1.0.1',
      previousArtifact: 'fort-1.0.1',
      lastError: null,
    });
    expect(h.delivered).toEqual([]);

    const sick = harness({ healthyOn: (v) => v !== '1.0.0' });
    const s = sick.updater();
    await s.poll((id) => join(sick.dir, `${id}.mender`));
    await s.runToIdle();
    s.startRollback();
    await s.runToIdle();
    expect(sick.current).toBe('1.0.1');
    expect(s.state).toMatchObject({
      installed: '1.0.1',
      previous: '1.0.0',
      lastError: 'the agent did not report healthy on 1.0.0 within 0.05 s',
    });
  });
});
