import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A small tmpfs mounted on `dir` (root only: CI runs as root), so that a writer meets a real
 * ENOSPC. `fill(leave)` takes all but `leave` bytes with one preallocated file; `free()` gives
 * them back.
 */
export function mountSmallFs(dir: string, mib: number) {
  if (process.getuid?.() !== 0) throw new Error(`mounting a ${mib} MiB tmpfs on ${dir} needs root`);
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0755`, 'tmpfs', dir]);
  const filler = join(dir, '.filler');
  const freeBytes = () => {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  };
  return {
    dir,
    freeBytes,
    /**
     * Leaves at most `leave` bytes free (to the block). The processes on it keep writing meanwhile:
     * most is preallocated at once, the rest is topped up a block at a time until it is taken.
     */
    fill(leave = 0) {
      const bulk = freeBytes() - leave - 1024 * 1024;
      if (bulk > 0) execFileSync('fallocate', ['-l', String(bulk), filler]);
      const fd = openSync(filler, 'a');
      try {
        const block = Buffer.alloc(4096, 1);
        while (freeBytes() > leave) writeSync(fd, block);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      } finally {
        closeSync(fd);
      }
    },
    free() {
      rmSync(filler, { force: true });
    },
    unmount() {
      execFileSync('umount', ['-l', dir]);
    },
  };
}
export type SmallFs = ReturnType<typeof mountSmallFs>;
