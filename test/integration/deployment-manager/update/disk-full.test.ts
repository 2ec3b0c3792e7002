import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, jsonLines } from '../../../helpers/fort.js';
import { mountSmallFs, type SmallFs } from '../../../helpers/small-fs.js';
import { startUpdatableFort, type UpdatableFort } from '../../../helpers/update-fort.js';

const MiB = 1024 * 1024;

/**
 * The deployment manager's staging directory and the install root on real small file systems
 * (tmpfs): an artifact with no room to download, or a release with no room to unpack, makes
 * the deployment wait (still `downloading` at the server, the reason in `fortctl update status`),
 * with nothing half-installed; once space is freed it goes on by itself to success.
 */
describe('updates on a full disk (deployment manager, dev update server, real agent)', () => {
  let fort: UpdatableFort;
  let staging: SmallFs;
  let root: SmallFs | undefined;

  const waiting = (since: number) =>
    eventually(
      () => {
        const s = fort.state();
        const logged = jsonLines(fort.dm!.stdout.slice(since)).some(
          (l) => l['msg'] === 'update waits for disk space; it goes on by itself once there is room',
        );
        return logged && /^waiting for disk space: /.test(s.lastError ?? '') ? s : undefined;
      },
      30_000,
      'the deployment waiting for disk space',
    );
  const serverStatus = (id: string) => fort.dev.mender.deployment(id)?.devices[0]?.status;

  beforeAll(async () => {
    fort = await startUpdatableFort({
      fortId: 'fort-disk-full',
      updatesToml: 'disk_retry_seconds = 1\n',
      beforeInstall: (dir) => (root = mountSmallFs(dir, 160)),
    });
    staging = mountSmallFs(fort.stagingDir, 128);
  });
  afterAll(async () => {
    staging?.unmount();
    root?.unmount();
    await fort?.stop();
  });

  it('no room to download the artifact: the deployment waits, reported downloading, and succeeds once space is freed', async () => {
    const release = fort.release('1.0.1');
    // The download needs the artifact and 64 MiB to spare.
    staging.fill(32 * MiB);
    const since = fort.dm!.stdout.length;
    const id = await fort.deploy(release);
    const s = await waiting(since);
    expect(s.step).toBe('downloading');
    expect(s.lastError).toMatch(/not enough free disk in .*staging/);
    expect(serverStatus(id)).toBe('downloading');
    expect(fort.current()).toBe('1.0.0');

    staging.free();
    const done = await fort.finished(id);
    expect(done.status).toBe('success');
    expect(await fort.health()).toMatchObject({ version: '1.0.1' });
    expect(fort.state().lastError).toBeNull();
  });

  it('no room to unpack the release: what was unpacked is removed, the deployment waits, then succeeds', async () => {
    const release = fort.release('1.0.2');
    const unpacked = Number(
      execFileSync('du', ['-sb', join(fort.root, 'releases', '1.0.1')], { encoding: 'utf8' }).split('\t')[0],
    );
    // Half a release: the unpack starts and meets ENOSPC on the way.
    root!.fill(Math.floor(unpacked / 2));
    const since = fort.dm!.stdout.length;
    const id = await fort.deploy(release);
    const s = await waiting(since);
    expect(s.lastError).toMatch(/no space left unpacking the release/);
    expect(serverStatus(id)).toBe('downloading');
    // Nothing half-installed: between its tries (a second apart) no partial or verified release
    // is left beside the two installed ones.
    await eventually(
      () => (readdirSync(join(fort.root, 'releases')).sort().join() === '1.0.0,1.0.1' ? true : undefined),
      10_000,
      'the releases directory with the installed releases only',
    );
    expect(fort.current()).toBe('1.0.1');

    root!.free();
    const done = await fort.finished(id);
    expect(done.status).toBe('success');
    expect(await fort.health()).toMatchObject({ version: '1.0.2' });
  });
});
