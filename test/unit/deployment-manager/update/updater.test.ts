import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pino } from 'pino';
import {
  createUpdater,
  type SelfUpdateLink,
  type UpdaterDeps,
  type UpdateServer,
} from '../../../../deployment-manager/update/updater.js';
import type { SelfUpdateStatus } from '../../../../deployment-manager/self-update/contract.js';
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
    /** The effect that "kills the process" (throws what no step catches), while this says so. */
    crashAt?: { effect: string; while: () => boolean };
    /** The download runs until its signal aborts. */
    downloadUntilAborted?: boolean;
    /** What the download reports as it goes (else 2 MiB once). */
    progress?: (onProgress: (bytes: number) => void) => void;
    abortCheckMs?: number;
    selfUpdate?: SelfUpdateLink;
    /** Download (`download`) or unpack (`verify`) finds no room while this says so. */
    diskFull?: { at: 'download' | 'verify'; while: () => boolean };
    diskWaitMs?: number;
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
    download: async (d, onProgress, signal) => {
      effects.push(`download(${d.artifactFile})`);
      if (opts.diskFull?.at === 'download' && opts.diskFull.while())
        throw new FortError('FORT_ERR_DISK_LOW', 'artifact download: not enough free disk in /staging', {
          fatal: false,
        });
      if (opts.progress) opts.progress(onProgress);
      else onProgress(2 * 1024 * 1024);
      if (opts.downloadUntilAborted)
        await new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(new Error('download aborted')), { once: true }),
        );
    },
    verify: async (d) => {
      effects.push('verify');
      if (opts.diskFull?.at === 'verify' && opts.diskFull.while())
        throw new FortError('FORT_ERR_DISK_LOW', 'no space left unpacking the release in /releases', { fatal: false });
      if (opts.verifyFails) throw new FortError('FORT_ERR_ARTIFACT', opts.verifyFails, { fatal: false });
      return { artifactName: d.artifactName, payload: join(dir, 'payload.tgz') };
    },
    install: async () => {
      effects.push('install');
      crash('install');
      return { version: '1.0.1' };
    },
    switchTo: (v) => {
      effects.push(`switch(${v})`);
      crash(`switch(${v})`);
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
    diskRetryMs: 5,
    diskWaitMs: opts.diskWaitMs ?? 60_000,
    abortCheckMs: opts.abortCheckMs,
    selfUpdate: opts.selfUpdate,
    budget: { stepAttempts: 3, steps: 40 },
    log,
  });
  function crash(effect: string) {
    if (opts.crashAt?.effect === effect && opts.crashAt.while()) throw new Error(`simulated crash in ${effect}`);
  }
  return {
    dir,
    stateFile,
    effects,
    delivered,
    get current() {
      return current;
    },
    clearDeployment: () => (deployment = undefined),
    updater: (state = stateFile.load(), extra: Partial<UpdaterDeps> = {}) =>
      createUpdater({ ...deps(state), ...extra }),
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
      'install',
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

  it('persists download progress at most once a second, not at every MiB (each is a synchronous fsync)', async () => {
    const MiB = 1024 * 1024;
    let clockMs = 0;
    // 200 MiB in 2 s, reported every MiB.
    const h = harness({
      progress: (onProgress) => {
        for (let mib = 1; mib <= 200; mib++) {
          clockMs += 10;
          onProgress(mib * MiB);
        }
      },
    });
    const persisted: number[] = [];
    const state = {
      ...h.stateFile,
      save: (st: UpdateState) => {
        if (st.step === 'downloading') persisted.push(st.deployment.downloaded / MiB);
        return h.stateFile.save(st);
      },
    };
    const u = h.updater(undefined, { state, monotonicMs: () => clockMs });
    await u.poll((id) => join(h.dir, `${id}.mender`));
    await u.runToIdle();
    // At 1 s and 2 s (the other saves of the step are its entry and its reports).
    expect(persisted.filter((mib) => mib > 0)).toEqual([100, 200]);
    expect(u.state).toMatchObject({ step: 'idle', installed: '1.0.1' });
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
    expect(h.effects).not.toContain('install');
    expect(h.current).toBe('1.0.0');
    expect(h.delivered).toEqual(['d1:downloading', 'd1:log(1)', 'd1:failure']);
    expect(u.state.lastError).toBe('manifest.sig: signature does not verify with the configured key');
  });

  it('no room to download or unpack: the deployment waits for space (no failure reported), then goes on by itself', async () => {
    for (const at of ['download', 'verify'] as const) {
      let looks = 0;
      const h = harness({ diskFull: { at, while: () => ++looks <= 3 } });
      const u = h.updater();
      await u.poll((id) => join(h.dir, `${id}.mender`));
      await u.runToIdle();
      await u.deliverReports();
      expect(looks).toBe(4);
      expect(
        h.effects.filter((e) => e === (at === 'download' ? `download(${join(h.dir, 'd1.mender')})` : 'verify')),
      ).toHaveLength(4);
      // The waits report `downloading` again (an abort would be seen), never a failure.
      expect(h.delivered).toEqual([
        'd1:downloading',
        'd1:downloading',
        'd1:downloading',
        'd1:downloading',
        'd1:installing',
        'd1:rebooting',
        'd1:success',
      ]);
      expect(u.state).toMatchObject({ step: 'idle', installed: '1.0.1', lastError: null });
    }
  });

  it('no room for longer than disk_wait_minutes: the deployment fails with the reason, nothing installed', async () => {
    const h = harness({ diskFull: { at: 'download', while: () => true }, diskWaitMs: 30 });
    const u = h.updater();
    await u.poll((id) => join(h.dir, `${id}.mender`));
    await u.runToIdle();
    await u.deliverReports();
    expect(h.effects).not.toContain('install');
    expect(h.current).toBe('1.0.0');
    expect(h.delivered.slice(-2)).toEqual(['d1:log(1)', 'd1:failure']);
    expect(u.state.lastError).toMatch(/^artifact download: not enough free disk in \/staging; no room after waiting /);
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
    expect(vetoed.effects).not.toContain('install');
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
    expect(h.effects).toEqual(['verify', 'install', 'switch(1.0.1)', 'restart', 'keep(1.0.1,1.0.0)']);
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

  it('a step that crashes the process at every start is stopped by the budget: before the switch it fails, after it rolls back, reported once', async () => {
    for (const effect of ['install', 'switch(1.0.1)']) {
      const h = harness({ crashAt: { effect, while: () => true } });
      let u = h.updater();
      await u.poll((id) => join(h.dir, `${id}.mender`));
      let starts = 0;
      // Each "process" runs until the crash; the next one starts from the state file, as after a kill -9.
      for (; starts < 20 && u.state.step !== 'idle'; starts++) {
        await u.runToIdle().catch((err: Error) => expect(err.message).toBe(`simulated crash in ${effect}`));
        u = h.updater();
      }
      await u.deliverReports();
      const step = effect === 'install' ? 'installing' : 'switching';
      // Budget 3: three starts crash, the fourth gives up (after the switch: rolls back to 1.0.0).
      expect(starts).toBe(4);
      expect(h.effects.filter((e) => e === effect)).toHaveLength(3);
      expect(h.current).toBe('1.0.0');
      expect(u.state.step).toBe('idle');
      expect(u.state.lastError).toMatch(new RegExp(`step ${step} started 4 times without completing \\(budget 3\\)`));
      expect(h.delivered.filter((r) => r.endsWith(':failure'))).toEqual(['d1:failure']);
      expect(h.delivered).not.toContain('d1:success');
    }
  });

  it('the budget resets per deployment: a crash in one deployment does not count against the next', async () => {
    let crashing = true;
    const h = harness({ crashAt: { effect: 'install', while: () => crashing } });
    let u = h.updater();
    await u.poll((id) => join(h.dir, `${id}.mender`));
    for (let i = 0; i < 2; i++) {
      await u.runToIdle().catch(() => undefined);
      u = h.updater();
    }
    crashing = false;
    await u.runToIdle();
    expect(u.state).toMatchObject({ step: 'idle', installed: '1.0.1', lastError: null });
    expect(h.stateFile.load().deployment).toBeNull();
  });

  it('an abort at the server while downloading stops the download (not only at the next report), no failure reported', async () => {
    const h = harness({ downloadUntilAborted: true, abortCheckMs: 10, abortOn: 'downloading' });
    const u = h.updater();
    // `downloading` of the poll itself is queued; the check during the download gets the 409.
    await u.poll((id) => join(h.dir, `${id}.mender`));
    await u.runToIdle();
    expect(h.effects).not.toContain('verify');
    expect(u.state).toMatchObject({ step: 'idle', installed: '1.0.0' });
    expect(u.state.lastError).toMatch(/aborted/);
    expect(h.delivered.filter((r) => r.endsWith(':failure'))).toEqual([]);
  });

  describe('self-update (the deployment manager to the same release as the agent)', () => {
    const world = () => {
      const calls: string[] = [];
      let status: SelfUpdateStatus | undefined;
      const link = (ownVersion: string): SelfUpdateLink => ({
        ownVersion,
        answerMs: 200,
        request: (d, v) => void calls.push(`request(${d.id},${v})`),
        status: (id) => (status?.deploymentId === id ? status : undefined),
        prove: async (d) => void calls.push(`prove(${d.id},${ownVersion})`),
      });
      const setStatus = (step: SelfUpdateStatus['step'], reason: string | null = null) =>
        (status = {
          deploymentId: 'd1',
          step,
          target: '1.0.1',
          previous: '1.0.0',
          artifact: '/x',
          deadline: null,
          reason,
          updatedAt: new Date().toISOString(),
        });
      return { calls, link, setStatus };
    };

    it('old asks root and waits; the new one proves itself, commits once root has, and only then reports success', async () => {
      const w = world();
      const h = harness();
      const stop = new AbortController();
      const old = h.updater(undefined, { selfUpdate: w.link('1.0.0'), stopSignal: stop.signal });
      await old.poll((id) => join(h.dir, `${id}.mender`));
      const oldRun = old.runToIdle();
      await expect.poll(() => w.calls).toContain('request(d1,1.0.1)');
      expect(old.state.step).toBe('self_updating');
      expect(h.current).toBe('1.0.1'); // the agent first
      w.setStatus('verifying');
      w.setStatus('proving');
      // Root restarts the unit on the new version: the old process stops mid-wait, persisting nothing.
      stop.abort();
      await oldRun;
      expect(h.stateFile.load().step).toBe('self_updating');
      const fresh = h.updater(undefined, { selfUpdate: w.link('1.0.1') });
      const newRun = fresh.runToIdle();
      await expect.poll(() => w.calls).toContain('prove(d1,1.0.1)');
      await fresh.deliverReports();
      expect(h.delivered).not.toContain('d1:success');
      w.setStatus('committed');
      await newRun;
      await fresh.deliverReports();
      expect(fresh.state).toMatchObject({ step: 'idle', installed: '1.0.1', previous: '1.0.0', lastError: null });
      expect(h.delivered.filter((r) => r === 'd1:success')).toHaveLength(1);
      expect(w.calls.filter((c) => c.startsWith('prove'))).toHaveLength(1);
    });

    it('root refuses or rolls back the new deployment manager: the agent is rolled back too and failure reported with why', async () => {
      for (const step of ['refused', 'rolled_back'] as const) {
        const w = world();
        const h = harness();
        const u = h.updater(undefined, { selfUpdate: w.link('1.0.0') });
        await u.poll((id) => join(h.dir, `${id}.mender`));
        const run = u.runToIdle();
        await expect.poll(() => w.calls).toContain('request(d1,1.0.1)');
        w.setStatus(step, 'did not prove itself within 30 s');
        await run;
        await u.deliverReports();
        expect(h.current).toBe('1.0.0');
        expect(u.state).toMatchObject({ step: 'idle', installed: '1.0.0' });
        expect(u.state.lastError).toMatch(/deployment manager 1\.0\.1 .*by root: did not prove itself within 30 s/);
        expect(h.delivered.filter((r) => r.endsWith(':failure') || r.endsWith(':success'))).toEqual(['d1:failure']);
      }
    });

    it("an operator's install FILE leaves the deployment manager's own update to the daemon (it holds no lock on it)", async () => {
      const w = world();
      const h = harness();
      const u = h.updater(undefined, { selfUpdate: w.link('1.0.0') });
      u.startFromFile(join(h.dir, 'fort-1.0.1.mender'));
      await u.runToIdle({ leaveAt: ['self_updating'] });
      expect(u.state.step).toBe('self_updating');
      expect(h.current).toBe('1.0.1');
      expect(w.calls).toEqual([]);
      // The daemon, from the persisted state, asks root.
      const daemon = h.updater(undefined, { selfUpdate: w.link('1.0.0') });
      const run = daemon.runToIdle();
      await expect.poll(() => w.calls).toEqual(['request(file:' + u.state.deployment!.id.slice(5) + ',1.0.1)']);
      // No root here: the daemon's own deadline ends it, rolled back.
      await run;
      expect(h.current).toBe('1.0.0');
    });

    it('no answer from root within its time (no self-update service): rolled back, failure reported', async () => {
      const w = world();
      const h = harness();
      const u = h.updater(undefined, { selfUpdate: w.link('1.0.0') });
      await u.poll((id) => join(h.dir, `${id}.mender`));
      await u.runToIdle();
      await u.deliverReports();
      expect(h.current).toBe('1.0.0');
      expect(u.state.lastError).toMatch(/did not answer within 0\.2 s/);
      expect(h.delivered.filter((r) => r.endsWith(':failure'))).toEqual(['d1:failure']);
    });
  });
});
