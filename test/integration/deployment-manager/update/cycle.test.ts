import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, jsonLines, REPO, startDeploymentManager, tempDir } from '../../../helpers/fort.js';
import { startUpdatableFort, type UpdatableFort } from '../../../helpers/update-fort.js';
import { createAdminClient } from '../../../../lib/admin-client.js';
import { loadTlsMaterial } from '../../../../lib/tls.js';
import { parseMetrics, sample } from '../../../helpers/metrics.js';

/**
 * A whole update on loopback: release 1.0.1 built and signed with the real mender-artifact,
 * uploaded to the dev update server and deployed; the deployment manager (mutual TLS) downloads,
 * verifies, installs, switches `current`, has the agent restarted (a supervisor standing in for
 * systemd's Restart=always) and health-checks it; the server sees success and the inventory.
 */
describe('update cycle (deployment manager, dev update server, real agent)', () => {
  let fort: UpdatableFort;

  beforeAll(async () => {
    fort = await startUpdatableFort();
    expect((await fort.health()).version).toBe('1.0.0');
  });
  afterAll(async () => {
    await fort?.stop();
  });

  it('installs a signed 1.0.1: the agent restarts on it, the server records success and the inventory shows it', async () => {
    const done = await fort.finished(await fort.deploy(fort.release('1.0.1')));
    expect(done.status).toBe('success');
    expect(done.history.map((h) => h.status)).toEqual(
      expect.arrayContaining(['downloading', 'installing', 'rebooting', 'success']),
    );
    expect((await fort.health()).version).toBe('1.0.1');
    expect(readlinkSync(join(fort.root, 'current'))).toBe(join('releases', '1.0.1'));
    const inventory = await eventually(
      () => {
        const inv = fort.dev.mender.device(fort.fortId).inventory;
        return inv['fort_version'] === '1.0.1' ? inv : undefined;
      },
      20_000,
      'the inventory to show 1.0.1',
    );
    expect(inventory).toMatchObject({ artifact_name: 'fort-1.0.1', device_type: fort.deviceType });
    // Restarted through agent_restart_dir (as root's fort-agent-restart.path does), not drained.
    expect(existsSync(join(fort.inst.dir, 'data/dm/agent-restart/request'))).toBe(true);
    expect(jsonLines(fort.dm!.stdout).filter((l) => String(l['msg']).includes('draining it instead'))).toEqual([]);
  });

  it('tells the agent: fortctl update status and the metrics show 1.0.1 committed, also after the agent restarts', async () => {
    const fortctl = (...args: string[]) =>
      execFileSync(
        process.execPath,
        [join(REPO, 'dist/fortctl/main.js'), '--config', fort.inst.files.fortctl, ...args],
        { encoding: 'utf8' },
      );
    const committed = () =>
      eventually(
        () => {
          const out = fortctl('update', 'status');
          return out.startsWith('step        idle\n') && out.includes('installed   1.0.1 (fort-1.0.1)\n')
            ? out
            : undefined;
        },
        20_000,
        'fortctl update status to show 1.0.1 installed',
      );
    const status = await committed();
    expect(status).toContain('previous    1.0.0\n');
    expect(status).toContain('why         idle: no update in progress\n');
    const admin = createAdminClient({
      url: `https://127.0.0.1:${fort.inst.layout.ports.admin}`,
      tls: loadTlsMaterial({
        ca: fort.pki.trustZone.ca,
        cert: fort.pki.trustZone.fortctlCert,
        key: fort.pki.trustZone.fortctlKey,
      }),
    });
    try {
      const m = parseMetrics((await admin.metrics()).text);
      expect(sample(m, 'fort_update_state', { step: 'idle' })).toBe(1);
      expect(sample(m, 'fort_update_state', { step: 'health_checking' })).toBe(0);
      expect(sample(m, 'fort_update_info', { installed: '1.0.1', previous: '1.0.0', artifact: 'fort-1.0.1' })).toBe(1);
      // The agent keeps it in memory: restarted without an update, it hears it again at the deployment manager's next health check.
      const startedAt = (await admin.version()).body.startedAt;
      expect(fortctl('drain')).toBe('draining\n');
      await eventually(
        async () =>
          ((await admin.version().catch(() => undefined))?.body.startedAt ?? startedAt) !== startedAt || undefined,
        20_000,
        'the agent back after the drain',
      );
      await committed();
    } finally {
      admin.close();
    }
  });

  it('refuses an artifact signed with another key before anything is installed, and reports why', async () => {
    execFileSync('openssl', ['genrsa', '-traditional', '-out', join(fort.inst.dir, 'rogue.pem'), '2048'], {
      stdio: 'ignore',
    });
    const done = await fort.finished(
      await fort.deploy(fort.release('1.0.7', { key: join(fort.inst.dir, 'rogue.pem') })),
    );
    expect(done.status).toBe('failure');
    expect(done.log.map((l) => l.message)).toEqual(['manifest.sig: signature does not verify with the configured key']);
    expect(readdirSync(join(fort.root, 'releases'))).not.toContain('1.0.7');
    expect(readlinkSync(join(fort.root, 'current'))).toBe(join('releases', '1.0.1'));
    expect((await fort.health()).version).toBe('1.0.1');
  });

  it('resumes a download cut three times from where it stopped (the server saw the ranges), then installs it', async () => {
    const release = fort.release('1.0.3');
    const artifact = await fort.dev.mender.upload(release.artifact);
    for (const n of [50_000, 50_000, 50_000]) fort.dev.mender.dropAfterBytes(n);
    const done = await fort.finished(
      fort.dev.mender.deploy({ artifactName: release.artifactName, devices: fort.fortId }).id,
    );
    expect(done.status).toBe('success');
    const ranges = fort.dev.mender.downloads({ artifactId: artifact.id }).map((d) => d.range);
    expect(ranges[0]).toBeNull();
    // Three cuts, three resumes, each from further along.
    expect(ranges).toHaveLength(4);
    const offsets = ranges.slice(1).map((r) => Number(/^bytes=(\d+)-$/.exec(r ?? '')?.[1]));
    expect(offsets.every((o, i) => o > 0 && (i === 0 || o > offsets[i - 1]!))).toBe(true);
    expect((await fort.health()).version).toBe('1.0.3');
  });

  it('rolls back automatically when the new release never becomes healthy, and reports failure with a log', async () => {
    // A release whose agent dies at start.
    const done = await fort.finished(await fort.deploy(fort.release('1.0.2', { broken: true })));
    expect(done.status).toBe('failure');
    expect(done.log.map((l) => l.message)).toEqual([
      'the agent did not report healthy on 1.0.2 within 10 s',
      'rolled back to 1.0.3',
    ]);
    expect(readlinkSync(join(fort.root, 'current'))).toBe(join('releases', '1.0.3'));
    await fort.agentOn('1.0.3');
    // The operator's view of it.
    const status = await eventually(
      () => {
        const out = execFileSync(
          process.execPath,
          [join(REPO, 'dist/deployment-manager/cli.js'), 'status', '--config', fort.inst.files.dm],
          { encoding: 'utf8' },
        );
        return out.startsWith('step        idle') ? out : undefined;
      },
      10_000,
      'the state machine back to idle',
    );
    expect(status).toContain('installed   1.0.3 (fort-1.0.3)\n');
    expect(status).toContain(
      'why         idle; the last update failed: the agent did not report healthy on 1.0.2 within 10 s\n',
    );
  });

  it('refuses an update server whose certificate is from another CA: no request reaches it', async () => {
    // The same deployment manager config, but trusting the trust-zone root for the update server.
    const rogueConfig = join(fort.inst.dir, 'dm-rogue.toml');
    writeFileSync(
      rogueConfig,
      readFileSync(fort.inst.files.dm, 'utf8')
        .replace(`ca = "${fort.pki.cloudServer.ca}"`, `ca = "${fort.pki.trustZone.ca}"`)
        .replace(/path = "[^"]*state.json"/, `path = "${join(fort.inst.dir, 'rogue-state.json')}"`),
    );
    const attemptsBefore = fort.dev.mender.authAttempts().length;
    const rogue = await startDeploymentManager(rogueConfig);
    try {
      await rogue.waitReady(20_000);
      await eventually(
        () =>
          rogue.stdout.some(
            (l) => l.includes('update cycle did not complete') && /certificate|self.signed|verify/i.test(l),
          )
            ? true
            : undefined,
        20_000,
        'the refusal in the log',
      );
      expect(fort.dev.mender.authAttempts().length).toBe(attemptsBefore);
    } finally {
      await rogue.stop();
    }
  });
});

describe('update cycle when nothing acts on agent_restart_dir (fort-agent-restart.path not enabled)', () => {
  let fort: UpdatableFort;
  beforeAll(async () => {
    fort = await startUpdatableFort({
      agentRestart: false,
      updatesToml: `agent_restart_dir = "${join(tempDir('unwatched'), 'agent-restart')}"\n`,
    });
  });
  afterAll(async () => {
    await fort?.stop();
  });

  it('drains the agent after 3 s instead, says why, and the update still succeeds', async () => {
    const starts = fort.agent.starts;
    const done = await fort.finished(await fort.deploy(fort.release('1.0.1')));
    expect(done.status).toBe('success');
    expect((await fort.health()).version).toBe('1.0.1');
    expect(fort.agent.starts).toBe(starts + 1);
    const fallback = jsonLines(fort.dm!.stdout).filter((l) => String(l['msg']).includes('draining it instead'));
    expect(fallback).toHaveLength(1);
    expect(fallback[0]).toMatchObject({ level: 'warn', waitedMs: 3000 });
  });
});
