import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { eventually } from '../helpers/fort.js';
import { startHostFixture, type HostFixture } from './harness/installed-fort.js';
import { DEVICE_TYPE, repackRelease, type HostRelease } from './harness/releases.js';

const GATES = '/var/lib/fort/deployment-manager/gates';
/**
 * An operator hook (state script) before each step: blocks the first time its step is armed,
 * so the test kills both daemons at a known step. It runs as fort-dm inside the unit's sandbox,
 * where the deployment manager's state directory is writable.
 */
const GATE = `#!/bin/sh
g=${GATES}
[ -e "$g/arm.$FORT_UPDATE_STEP" ] || exit 0
rm -f "$g/arm.$FORT_UPDATE_STEP"
: > "$g/blocked.$FORT_UPDATE_STEP"
exec sleep 600
`;
const GATED_STEPS = ['downloading', 'installing', 'switching', 'health_checking'] as const;
/**
 * The gate of the deployment manager's own update: `old` blocks the deployment manager that asks
 * root, `new` the one root switched to (its release is `current` under root's install root).
 */
const SELF_GATE = `#!/bin/sh
g=${GATES}
who=old
[ "$(readlink /opt/fort/deployment-manager/current)" = "releases/$FORT_TARGET_RELEASE" ] && who=new
[ -e "$g/arm.self_updating.$who" ] || exit 0
rm -f "$g/arm.self_updating.$who"
: > "$g/blocked.self_updating.$who"
exec sleep 600
`;
/** Kills the deployment manager (its parent) at every start of the step while armed: a crash loop. */
const CRASH = `#!/bin/sh
[ -e ${GATES}/crash.$FORT_UPDATE_STEP ] || exit 0
kill -9 $PPID
exec sleep 60
`;
const PROOF_SECONDS = 30;

/** Over-the-air updates of the installed fort through the dev update server, under a real systemd. */
describe('updates of the installed fort under a real systemd', () => {
  let f: HostFixture;
  let fortId: string;
  const later: Record<string, HostRelease> = {};

  const agentVersion = async () =>
    JSON.parse((await f.adminApi('/admin/v1/health')).body) as { version: string; status: string };
  /** Uploads and deploys a release to this fort; resolves when the deployment finished at the server. */
  const deploy = async (release: HostRelease) => {
    await f.dev.mender.upload(release.artifact);
    const d = f.dev.mender.deploy({ artifactName: release.artifactName, devices: fortId });
    return d.id;
  };
  const finished = (id: string, timeoutMs = 150_000) =>
    eventually(
      () => {
        const d = f.dev.mender.deployment(id)!.devices[0]!;
        return ['success', 'failure'].includes(d.status) ? d : undefined;
      },
      timeoutMs,
      `deployment ${id} to finish`,
    );
  /** What the update server shows of this fort: the versions each process reported running. */
  const inventory = () => f.dev.mender.devices().find((d) => d.identity['fort_id'] === fortId)!.inventory;
  const bothRun = (v: string, what: string) =>
    eventually(
      async () => {
        const inv = inventory();
        const agent = await agentVersion().catch(() => undefined);
        return agent?.version === v && inv['fort_agent_version'] === v && inv['fort_deployment_manager_version'] === v
          ? inv
          : undefined;
      },
      90_000,
      what,
    );
  const dmLinks = async () => ({
    current: (await f.host.must(['readlink', '/opt/fort/deployment-manager/current'])).trim(),
    stable: (await f.host.must(['readlink', '/opt/fort/deployment-manager/stable'])).trim(),
  });
  const releaseListing = (v: string) =>
    f.host.must(['find', `/opt/fort/agent/releases/${v}`, '-printf', '%M %u %g %P\\n']);

  beforeAll(async () => {
    f = await startHostFixture();
    const installed = await f.install(f.run.releases.v100);
    expect(installed.code, installed.stderr).toBe(0);
    await f.waitActive('fort-agent.service');
    // An operator's tuning for a test: fast polls, a short health deadline, and the gates.
    await f.setConfig('/etc/fort/deployment-manager.toml', 'updates', {
      health_deadline_seconds: 30,
      hooks_dir: '/etc/fort/hooks',
    });
    await f.setConfig('/etc/fort/deployment-manager.toml', 'updates.paired', {
      poll_seconds: 2,
      retry_seconds: 1,
      inventory_seconds: 5,
    });
    await f.host.must(['install', '-d', '-o', 'root', '-g', 'root', '-m', '0755', '/etc/fort/hooks']);
    await f.setConfig('/etc/fort/deployment-manager.toml', 'updates.self_update', { proof_seconds: PROOF_SECONDS });
    const hook = (name: string, text: string) =>
      f.host.must(['sh', '-c', `cat > /etc/fort/hooks/${name} && chmod 0755 /etc/fort/hooks/${name}`], {
        input: text,
      });
    for (const step of GATED_STEPS) await hook(`${step}_50_gate`, GATE);
    await hook('self_updating_50_gate', SELF_GATE);
    await hook('switching_60_crash', CRASH);
    await f.host.must(['install', '-d', '-o', 'fort-dm', '-g', 'fort-dm', '-m', '0700', GATES]);
    await f.host.must(['systemctl', 'restart', 'fort-deployment-manager']);
    await f.waitActive('fort-deployment-manager.service');
    fortId = await f.pair();
    await f.dev.mender.waitFor(
      () => f.dev.mender.devices().find((d) => d.identity['fort_id'] === fortId),
      60_000,
      'the deployment manager asking to be admitted',
    );
    f.dev.mender.accept(fortId);
    const opts = { deviceType: DEVICE_TYPE, key: f.run.signing.private, out: join(f.run.dir, 'releases') };
    for (const [i, step] of GATED_STEPS.entries())
      later[step] = repackRelease(f.run.releases.v100, { version: `1.1.${i}`, ...opts });
    later['self'] = repackRelease(f.run.releases.v100, { version: '1.3.0', ...opts });
    later['crash'] = repackRelease(f.run.releases.v100, { version: '1.4.0', ...opts });
  });
  afterAll(async () => {
    await f?.stop();
  });

  it('1.0.0 → 1.0.1 over the air: success, the agent runs 1.0.1, its files owned and moded as install.sh makes them', async () => {
    const agentBefore = await f.unit('fort-agent.service');
    const engineBefore = await f.unit('fort-engine.service');
    const id = await deploy(f.run.releases.v101);
    const done = await finished(id);
    expect(done.status, JSON.stringify(done)).toBe('success');
    // Restarted by root's fort-agent-restart.path (systemctl restart: no RestartSec= wait), not
    // drained: a manual restart sets NRestarts back to 0, an automatic one would have added one.
    const agentAfter = await f.unit('fort-agent.service');
    expect(agentAfter.MainPID).not.toBe(agentBefore.MainPID);
    expect(agentAfter.NRestarts).toBe(0);
    // The engine runs from the agent's release: restarted with it, on the new code.
    const engineAfter = await f.waitActive('fort-engine.service');
    expect(engineAfter.MainPID).not.toBe(engineBefore.MainPID);
    expect(engineAfter.NRestarts).toBe(0);
    expect(await f.host.journal('fort-agent-restart.service')).toMatch(
      /Finished fort-agent-restart\.service|Deactivated successfully/,
    );
    expect(await f.host.journal('fort-deployment-manager.service')).not.toContain('draining it instead');
    await eventually(
      async () => ((await agentVersion()).version === '1.0.1' ? true : undefined),
      30_000,
      'the agent on 1.0.1',
    );
    expect((await f.host.must(['readlink', '/opt/fort/agent/current'])).trim()).toBe('releases/1.0.1');
    // The same tree as install.sh unpacked for 1.0.0: owner fort-dm, directories 0755, files 0644.
    const unpacked = await releaseListing('1.0.1');
    expect(unpacked).toBe(await releaseListing('1.0.0'));
    expect(unpacked).toMatch(/^drwxr-xr-x fort-dm fort-dm dist\/agent$/m);
    expect(unpacked).toMatch(/^-rw-r--r-- fort-dm fort-dm dist\/agent\/main\.js$/m);
    // The deployment manager too: installed by root beside the old one, root's, proven, stable.
    await bothRun('1.0.1', 'the update server to show both processes on 1.0.1');
    expect(await dmLinks()).toEqual({ current: 'releases/1.0.1', stable: 'releases/1.0.1' });
    const dm = await f.host.must([
      'find',
      '/opt/fort/deployment-manager/releases/1.0.1/dist/deployment-manager',
      '-maxdepth',
      '0',
      '-printf',
      '%M %u %g',
    ]);
    expect(dm).toBe('drwxr-xr-x root root');
    await f.waitActive('fort-deployment-manager.service');
    await f.pingRoundTrip(fortId);
  });

  it('a release whose agent exits at start is rolled back to 1.0.1 and reported failure with its log', async () => {
    const id = await deploy(f.run.releases.exitsAtStart);
    const done = await finished(id);
    expect(done.status).toBe('failure');
    const log = done.log.map((l) => l.message).join('\n');
    expect(log).toMatch(/1\.0\.2/);
    expect(log).toMatch(/rolled back to 1\.0\.1/);
    await eventually(
      async () => ((await agentVersion()).version === '1.0.1' ? true : undefined),
      60_000,
      'the agent back on 1.0.1',
    );
    expect((await f.host.must(['readlink', '/opt/fort/agent/current'])).trim()).toBe('releases/1.0.1');
    await f.waitActive('fort-agent.service');
    await f.pingRoundTrip(fortId);
  });

  for (const step of GATED_STEPS) {
    it(`kill -9 of both daemons while ${step}: after restart the deployment ends success or cleanly rolled back, reported once`, async () => {
      const release = later[step]!;
      const before = (await agentVersion()).version;
      await f.host.must(['sh', '-c', `: > ${GATES}/arm.${step}`]);
      const id = await deploy(release);
      await eventually(
        () => (existsSync(f.host.path(`${GATES}/blocked.${step}`)) ? true : undefined),
        90_000,
        `the update to reach ${step}`,
      );
      const killed = await f.host.systemctl(
        'kill',
        '-s',
        'KILL',
        'fort-agent.service',
        'fort-deployment-manager.service',
      );
      expect(killed.code, killed.stderr).toBe(0);
      await f.host.must(['rm', '-f', `${GATES}/blocked.${step}`]);

      const done = await finished(id);
      const terminal = done.history.filter((h) => h.status === 'success' || h.status === 'failure');
      expect(terminal, JSON.stringify(done.history)).toHaveLength(1);
      const runs = await eventually(
        async () => {
          const h = await agentVersion().catch(() => undefined);
          return h && h.status === 'healthy' ? h.version : undefined;
        },
        60_000,
        'the agent healthy again',
      );
      expect(runs).toBe(done.status === 'success' ? release.version : before);
      // The deployment manager is idle on what runs (it reports to the agent after each health check).
      await eventually(
        async () => {
          const view = JSON.parse((await f.fortctl('--json', 'update', 'status')).stdout) as {
            state: { step: string; installed: string } | null;
          };
          return view.state?.step === 'idle' && view.state.installed === runs ? true : undefined;
        },
        60_000,
        `fortctl update status: idle on ${runs}`,
      );
      await f.pingRoundTrip(fortId);
    });
  }

  for (const [name, broken] of [
    ['exits at start', () => f.run.releases.dmExitsAtStart],
    ['hangs before it is ready', () => f.run.releases.dmHangs],
  ] as const) {
    it(`a deployment manager that ${name}: root restores the previous one, which rolls the agent back and reports failure`, async () => {
      const before = (await agentVersion()).version;
      const release = broken();
      const id = await deploy(release);
      const done = await finished(id, 240_000);
      expect(done.status, JSON.stringify(done.history)).toBe('failure');
      const terminal = done.history.filter((h) => h.status === 'success' || h.status === 'failure');
      expect(terminal).toHaveLength(1);
      const log = done.log.map((l) => l.message).join('\n');
      expect(log).toMatch(
        new RegExp(`deployment manager ${release.version.replace(/\./g, '\\.')} was rolled back by root`),
      );
      expect(log).toMatch(new RegExp(`within ${PROOF_SECONDS} s`));
      expect(await dmLinks()).toEqual({ current: `releases/${before}`, stable: `releases/${before}` });
      // The previous deployment manager is back by itself, polling: it reported, and tells the server what runs.
      await bothRun(before, `both processes back on ${before}`);
      await f.waitActive('fort-deployment-manager.service');
      // Root prunes the failed release as its last step, after the status the restored one reports from.
      await eventually(
        async () =>
          (await f.host.must(['ls', '/opt/fort/deployment-manager/releases']))
            .trim()
            .split('\n')
            .includes(release.version)
            ? undefined
            : true,
        30_000,
        `root to remove the failed release ${release.version}`,
      );
      await f.pingRoundTrip(fortId);
    });
  }

  it("kill -9 of the deployment manager at each step of its own update (and of root's guard): converges on the new version, reported once", async () => {
    const release = later['self']!;
    await f.host.must(['sh', '-c', `: > ${GATES}/arm.self_updating.old; : > ${GATES}/arm.self_updating.new`]);
    const id = await deploy(release);
    const blocked = (who: string) =>
      eventually(
        () => (existsSync(f.host.path(`${GATES}/blocked.self_updating.${who}`)) ? true : undefined),
        120_000,
        `the ${who} deployment manager in self_updating`,
      );
    const kill = async (...units: string[]) => {
      const r = await f.host.systemctl('kill', '-s', 'KILL', ...units);
      expect(r.code, r.stderr).toBe(0);
    };
    // The old one, about to ask root.
    await blocked('old');
    await kill('fort-deployment-manager.service');
    await f.host.must(['rm', '-f', `${GATES}/blocked.self_updating.old`]);
    // The new one, switched to by root, before it proved itself; root's guard is killed too.
    await blocked('new');
    expect((await f.unit('fort-dm-self-update.service')).ActiveState).toBe('activating');
    await kill('fort-deployment-manager.service', 'fort-dm-self-update.service');
    await f.host.must(['rm', '-f', `${GATES}/blocked.self_updating.new`]);

    const done = await finished(id);
    expect(done.status, JSON.stringify(done.history)).toBe('success');
    const terminal = done.history.filter((h) => h.status === 'success' || h.status === 'failure');
    expect(terminal, JSON.stringify(done.history)).toHaveLength(1);
    await bothRun(release.version, `both processes on ${release.version}`);
    expect(await dmLinks()).toEqual({ current: `releases/${release.version}`, stable: `releases/${release.version}` });
    await f.pingRoundTrip(fortId);
  });

  it('a step that kills the deployment manager at every start (a release crashing it mid-update): the step budget rolls back and reports why', async () => {
    const before = (await agentVersion()).version;
    await f.host.must(['sh', '-c', `: > ${GATES}/crash.switching`]);
    try {
      const id = await deploy(later['crash']!);
      const done = await finished(id, 240_000);
      expect(done.status).toBe('failure');
      const log = done.log.map((l) => l.message).join('\n');
      expect(log).toMatch(/step switching started 6 times without completing \(budget 5\)/);
      const dm = await f.unit('fort-deployment-manager.service');
      expect(dm.NRestarts).toBeGreaterThanOrEqual(5);
    } finally {
      await f.host.must(['rm', '-f', `${GATES}/crash.switching`]);
    }
    await f.waitActive('fort-deployment-manager.service');
    await bothRun(before, `both processes still on ${before}`);
    await f.pingRoundTrip(fortId);
  });
});
