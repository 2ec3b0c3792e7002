import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { startDiskSpace, type DiskSpace } from '../../../agent/disk.js';
import { createHealthRegistry } from '../../../agent/health.js';
import { reloadsSection } from '../../../agent/reloads/config.js';
import { startReloadService, type ReloadService } from '../../../agent/reloads/service.js';
import { openStore, type Store } from '../../../agent/store/database.js';
import { tempDir } from '../../helpers/fort.js';
import { reloadEnded } from '../../helpers/apps.js';

const log = pino({ level: 'silent' });
const MiB = 1024 * 1024;
/** A file system of 10 000 blocks of 1 MiB with `free` of them free. */
const fsWith = (free: { mib: number }) => () => ({ bsize: MiB, blocks: 10_000, bavail: free.mib });

let disk: DiskSpace | undefined;
let service: ReloadService | undefined;
let store: Store | undefined;
afterEach(async () => {
  await service?.stop();
  store?.close();
  disk = service = store = undefined;
});

describe('disk space of the data directory', () => {
  it('is a health module: ready, degraded under the warning share, and a floor new work checks', () => {
    const health = createHealthRegistry();
    const free = { mib: 5000 };
    disk = startDiskSpace({ dir: '/data', warnFreePercent: 10, minFreeMib: 256, health, statfs: fsWith(free) });
    expect(health.snapshot().modules['disk']).toMatchObject({
      state: 'ready',
      detail: '5000 MiB free (50.0 %) on /data',
    });
    expect(() => disk!.assertRoom('reload of sales')).not.toThrow();
    free.mib = 900; // 9 %: degraded, still over the floor
    disk = startDiskSpace({ dir: '/data', warnFreePercent: 10, minFreeMib: 256, health, statfs: fsWith(free) });
    expect(health.snapshot().modules['disk']).toMatchObject({ state: 'degraded' });
    expect(() => disk!.assertRoom('reload of sales')).not.toThrow();
    free.mib = 100;
    expect(() => disk!.assertRoom('reload of sales')).toThrow(
      expect.objectContaining({
        code: 'FORT_ERR_DISK_LOW',
        message: 'reload of sales refused: 100 MiB free on /data, under store.disk_min_free_mib (256)',
      }),
    );
  });

  it('a reload under the floor fails at once with FORT_ERR_DISK_LOW; the current version keeps serving', async () => {
    const dir = tempDir('disk-reload');
    writeFileSync(join(dir, 'orders.csv'), 'id\n1\n2\n');
    store = openStore({ path: join(dir, 'agent.db'), log });
    const free = { mib: 5000 };
    disk = startDiskSpace({
      dir,
      warnFreePercent: 10,
      minFreeMib: 256,
      health: createHealthRegistry(),
      statfs: fsWith(free),
    });
    const d = disk;
    service = startReloadService({
      db: store.db,
      config: reloadsSection().parse({ data_dirs: [dir] }),
      appsDir: join(dir, 'apps'),
      fortId: 'fort-test-1',
      log,
      assertRoom: (what) => d.assertRoom(what),
    });
    await service.registry.register(
      'id = "orders"\nname = "orders"\nspace = "s"\n[[tables]]\nname = "orders"\nconnector = "csv"\npath = "orders.csv"\ncolumns = [ { name = "id", type = "integer" } ]\n',
      'toml',
      'test',
    );
    service.start();
    const done = (id: string) => reloadEnded(service!.queue, id);
    const first = await done(service.request('orders', 'test').reload.id);
    expect(first).toMatchObject({ state: 'succeeded', rows: 2 });
    free.mib = 10;
    const refused = await done(service.request('orders', 'test').reload.id);
    expect(refused).toMatchObject({ state: 'failed', errorCode: 'FORT_ERR_DISK_LOW' });
    expect(refused.errorMessage).toMatch(
      /^reload of orders refused: 10 MiB free on .*, under store\.disk_min_free_mib \(256\)$/,
    );
    expect(store.db.prepare('SELECT current_version_id FROM apps WHERE id = ?').pluck().get('orders')).toBe(
      first.versionId,
    );
  });
});
