import { statfsSync, type StatsFs } from 'node:fs';
import { FortError } from '../lib/errors.js';
import type { HealthRegistry } from './health.js';

const MiB = 1024 * 1024;

export interface DiskSpaceOptions {
  /** The data directory: the file system the store, the audit trail and app versions fill. */
  dir: string;
  /** Below this free share the `disk` health module is degraded. */
  warnFreePercent: number;
  /** Below this, new reloads are refused (FORT_ERR_DISK_LOW). */
  minFreeMib: number;
  health: HealthRegistry;
  statfs?: (dir: string) => Pick<StatsFs, 'bavail' | 'bsize' | 'blocks'>;
}

/**
 * Free space of the data directory's file system: a `disk` health module (degraded under
 * `warnFreePercent`, so the cloud sees it coming) and a floor that new work checks before it
 * starts, so a reload fails at once with a clear code instead of half-way with ENOSPC.
 */
export function startDiskSpace(o: DiskSpaceOptions) {
  const statfs = o.statfs ?? statfsSync;
  const free = () => {
    const s = statfs(o.dir);
    const freeBytes = s.bavail * s.bsize;
    return { freeBytes, freeMib: Math.floor(freeBytes / MiB), freePercent: (s.bavail / s.blocks) * 100 };
  };
  const record = (f: ReturnType<typeof free>) =>
    o.health.set(
      'disk',
      f.freePercent < o.warnFreePercent || f.freeMib < o.minFreeMib ? 'degraded' : 'ready',
      `${f.freeMib} MiB free (${f.freePercent.toFixed(1)} %) on ${o.dir}`,
    );
  const look = () => {
    try {
      record(free());
    } catch (err) {
      o.health.set(
        'disk',
        'degraded',
        `cannot read the free space of ${o.dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  };
  // Looked at on every health read (one statfs): the module is only ever seen through them.
  o.health.refreshOnRead(look);
  return {
    /** Throws FORT_ERR_DISK_LOW when the free space is under the floor (and updates the health module). */
    assertRoom(what: string): void {
      const f = free();
      if (f.freeMib >= o.minFreeMib) return;
      record(f);
      throw new FortError(
        'FORT_ERR_DISK_LOW',
        `${what} refused: ${f.freeMib} MiB free on ${o.dir}, under store.disk_min_free_mib (${o.minFreeMib})`,
        { fatal: false },
      );
    },
    /** The free space now (the shadow reports it). */
    free,
  };
}
export type DiskSpace = ReturnType<typeof startDiskSpace>;
