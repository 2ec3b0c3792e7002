import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';

/** Whether a process with this pid exists (EPERM: it does, as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function holderOf(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * One process at a time works on the update state: the daemon for each cycle, an operator's
 * `install FILE` or `rollback` for its whole run. A pid file created with link(2), so it never
 * exists half-written; a holder that died (kill -9) leaves a stale file that the next taker
 * removes. Node has no flock(2); the one race left, two processes clearing the same stale file
 * at the same instant, needs a crash and two starts within microseconds.
 */
export function createWorkLock(path: string) {
  const tmp = `${path}.${process.pid}`;
  let held = false;
  /** The pid of a live process that holds the lock, if another one does. */
  const liveHolder = (): number | null => {
    const pid = holderOf(path);
    return pid !== null && pid !== process.pid && alive(pid) ? pid : null;
  };
  return {
    holder: liveHolder,
    /** Takes the lock, or returns the live holder's pid. */
    tryAcquire(): { acquired: true } | { acquired: false; holder: number } {
      if (held) return { acquired: true };
      writeFileSync(tmp, `${process.pid}\n`, { mode: 0o600 });
      try {
        for (let attempt = 0; attempt < 2; attempt++) {
          try {
            linkSync(tmp, path);
            held = true;
            return { acquired: true };
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          }
          const pid = liveHolder();
          if (pid !== null) return { acquired: false, holder: pid };
          try {
            unlinkSync(path); // stale: its holder is gone
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          }
        }
        const pid = holderOf(path);
        return { acquired: false, holder: pid ?? 0 };
      } finally {
        unlinkSync(tmp);
      }
    },
    release(): void {
      if (!held) return;
      held = false;
      if (holderOf(path) === process.pid) unlinkSync(path);
    },
  };
}
export type WorkLock = ReturnType<typeof createWorkLock>;
