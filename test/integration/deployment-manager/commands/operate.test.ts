import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, REPO } from '../../../helpers/fort.js';
import { stepGates } from '../../../helpers/step-gates.js';
import { startUpdatableFort, type UpdatableFort } from '../../../helpers/update-fort.js';

const CLI = join(REPO, 'dist/deployment-manager/cli.js');

/**
 * An air-gapped fort (no update server): operators install artifacts from disk and roll back by
 * hand, through the same verification, health check and state machine as a deployment, while
 * the deployment manager daemon runs (they share a lock; the daemon carries on what a killed
 * command left).
 */
describe('operator commands: install FILE and rollback on a fort without an update server', () => {
  let fort: UpdatableFort;
  const gates = stepGates(1);
  // Asynchronous: the supervisor that restarts the agent lives in this process.
  const run = (...args: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args, '--config', fort.inst.files.dm]);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.once('close', (status) => resolve({ status, stdout, stderr }));
    });

  beforeAll(async () => {
    fort = await startUpdatableFort({
      server: false,
      updatesToml: `resume_seconds = 1\nhooks_dir = "${gates.hooksDir}"\n`,
    });
  });
  afterAll(async () => {
    await fort?.stop();
    gates.cleanup();
  });

  it('installs a signed artifact: health-checked and committed, the daemon still running', async () => {
    const artifact = fort.release('1.0.1').artifact;
    const r = await run('install', artifact);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`install ${artifact}: 1.0.1 (fort-1.0.1) is installed and healthy; previous 1.0.0\n`);
    expect(r.status).toBe(0);
    expect(fort.current()).toBe('1.0.1');
    expect((await fort.health()).version).toBe('1.0.1');
    expect(fort.state()).toMatchObject({ step: 'idle', installed: '1.0.1', previous: '1.0.0', lastError: null });
    expect(statSync(artifact).isFile()).toBe(true); // the operator's file is theirs to keep
  });

  it('refuses a tampered artifact before anything is installed, with the reason', async () => {
    const good = fort.release('1.0.2').artifact;
    const bad = join(fort.inst.dir, 'tampered.mender');
    copyFileSync(good, bad);
    const bytes = readFileSync(bad);
    bytes[Math.floor(bytes.length * 0.6)]! ^= 0x01;
    writeFileSync(bad, bytes);
    const r = await run('install', bad);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(
      new RegExp(`^install ${bad}: failed: (data/0000\\.tar\\.gz|.*checksum|.*gzip|.*header).*; running 1\\.0\\.1\\n$`),
    );
    expect(readdirSync(join(fort.root, 'releases'))).not.toContain('1.0.2');
    expect(fort.current()).toBe('1.0.1');
    expect(fort.state()).toMatchObject({ step: 'idle', installed: '1.0.1' });
  });

  it('rolls back by hand to the previous release, health-checked', async () => {
    const r = await run('rollback');
    expect(r.stdout).toBe('rollback: 1.0.0 (fort-1.0.0) is installed and healthy; previous 1.0.1\n');
    expect(r.status).toBe(0);
    expect(fort.current()).toBe('1.0.0');
    expect((await fort.health()).version).toBe('1.0.0');
  });

  it('waits for, then refuses with 75, while another live process holds the update lock', async () => {
    const lock = `${fort.stateFile}.lock`;
    writeFileSync(lock, `${fort.agent.pid}\n`);
    try {
      const r = await run('rollback', '--wait-seconds', '1');
      expect(r.status).toBe(75);
      expect(r.stderr).toBe(
        `fort-deployment-manager: the deployment manager (pid ${fort.agent.pid}) is busy; try again later\n`,
      );
      expect(fort.current()).toBe('1.0.0');
      expect((await run('status')).stdout).toContain(`lock        held by pid ${fort.agent.pid} `);
    } finally {
      rmSync(lock, { force: true });
    }
  });

  it('an install killed (kill -9) half-way is carried on by the daemon: committed, never half-installed', async () => {
    gates.arm(['installing']);
    const artifact = fort.release('1.0.3').artifact;
    const cli = spawn(process.execPath, [CLI, 'install', artifact, '--config', fort.inst.files.dm], {
      stdio: 'ignore',
    });
    const gate = await eventually(() => gates.blocked(), 30_000, 'the install to reach unpacking');
    cli.kill('SIGKILL');
    await new Promise((r) => cli.once('exit', r));
    expect(fort.state().step).toBe('installing');
    gates.open(gate.marker);
    await eventually(
      () => (fort.state().step === 'idle' && fort.state().installed === '1.0.3' ? true : undefined),
      60_000,
      'the daemon to finish the install',
    );
    expect(fort.current()).toBe('1.0.3');
    await fort.agentOn('1.0.3');
  });
});
