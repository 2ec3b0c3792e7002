import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { createHookRunner } from '../../../../deployment-manager/update/hooks.js';
import { createWorkLock } from '../../../../deployment-manager/update/work-lock.js';
import { tempDir } from '../../../helpers/fort.js';

const log = pino({ level: 'silent' });
const ctx = { deploymentId: 'd1', artifactName: 'fort-1.0.1', target: '1.0.1', installed: '1.0.0' };

function hook(dir: string, name: string, body: string, mode = 0o750): string {
  const file = join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, mode);
  return file;
}

describe('update hooks (state scripts)', () => {
  it("runs the step's executables in name order with the update in the environment, and nothing else of ours", async () => {
    const dir = tempDir('hooks');
    const out = join(dir, 'out.txt');
    hook(dir, 'installing_20_second', `echo "second $FORT_UPDATE_STEP" >> ${out}`);
    hook(
      dir,
      'installing_10_first',
      `echo "first $FORT_DEPLOYMENT_ID $FORT_ARTIFACT_NAME $FORT_TARGET_RELEASE $FORT_INSTALLED_RELEASE secret=\${FORT_HOOK_TEST_SECRET:-none}" >> ${out}`,
    );
    hook(dir, 'installing', `echo "bare" >> ${out}`);
    hook(dir, 'installingx', `echo "not a match" >> ${out}`);
    hook(dir, 'verifying_10', `echo "other step" >> ${out}`);
    // The daemon's own environment (systemd credentials, proxy passwords) is not passed on.
    process.env['FORT_HOOK_TEST_SECRET'] = 'from-the-daemon';
    try {
      await createHookRunner({ dir, timeoutMs: 5000, log })('installing', ctx);
    } finally {
      delete process.env['FORT_HOOK_TEST_SECRET'];
    }
    expect(readFileSync(out, 'utf8')).toBe('bare\nfirst d1 fort-1.0.1 1.0.1 1.0.0 secret=none\nsecond installing\n');
  });

  it('a non-zero exit or a timeout fails with the hook, the status and the last stderr line', async () => {
    const dir = tempDir('hooks');
    hook(dir, 'downloading_window', 'echo "checking" >&2; echo "outside the maintenance window" >&2; exit 4');
    await expect(createHookRunner({ dir, timeoutMs: 5000, log })('downloading', ctx)).rejects.toThrow(
      'hook downloading_window exited with status 4: outside the maintenance window',
    );
    const slow = tempDir('hooks');
    hook(slow, 'verifying', 'exec sleep 30');
    await expect(createHookRunner({ dir: slow, timeoutMs: 300, log })('verifying', ctx)).rejects.toThrow(
      'hook verifying timed out after 0.3 s',
    );
  });

  it('refuses hooks others could have written, and files that are not executable; no hooks dir is no hooks', async () => {
    const dir = tempDir('hooks');
    hook(dir, 'switching', 'exit 0', 0o777);
    await expect(createHookRunner({ dir, timeoutMs: 5000, log })('switching', ctx)).rejects.toThrow(
      'hook switching is writable by group/others or owned by another user; refusing to run it',
    );
    hook(dir, 'committed', 'exit 0', 0o640);
    await expect(createHookRunner({ dir, timeoutMs: 5000, log })('committed', ctx)).rejects.toThrow(
      'hook committed is not executable',
    );
    await expect(
      createHookRunner({ dir: join(dir, 'absent'), timeoutMs: 5000, log })('committed', ctx),
    ).resolves.toBeUndefined();
  });
});

describe('update work lock', () => {
  it('one holder at a time; released on request; a dead holder leaves a lock the next taker clears', () => {
    const dir = tempDir('lock');
    const path = join(dir, 'state.json.lock');
    const lock = createWorkLock(path);
    expect(lock.tryAcquire()).toEqual({ acquired: true });
    expect(readFileSync(path, 'utf8')).toBe(`${process.pid}\n`);
    // Another live process holds it: this one is refused and told who.
    lock.release();
    expect(existsSync(path)).toBe(false);
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    const deadPid = Number(child.stdout);
    writeFileSync(path, `${deadPid}\n`);
    expect(lock.holder()).toBeNull();
    expect(lock.tryAcquire()).toEqual({ acquired: true });
    lock.release();
    writeFileSync(path, `${process.ppid}\n`); // alive: vitest's parent
    expect(lock.holder()).toBe(process.ppid);
    expect(lock.tryAcquire()).toEqual({ acquired: false, holder: process.ppid });
    lock.release(); // not ours: left alone
    expect(readFileSync(path, 'utf8')).toBe(`${process.ppid}\n`);
  });
});
