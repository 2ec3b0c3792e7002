import { closeSync, constants, fstatSync, openSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';

/** Why a file may not be read: it cannot be opened, it is not a regular file, or it lies outside the allowed directories. */
export class ConfinedFileRefused extends Error {
  constructor(
    readonly reason: 'unreadable' | 'not_regular' | 'outside',
    readonly code?: string,
  ) {
    super(
      reason === 'unreadable'
        ? `the file cannot be read${code ? ` (${code})` : ''}`
        : reason === 'not_regular'
          ? 'is not a regular file'
          : 'resolves outside the allowed directories',
    );
  }
}

/** An open, checked source file. `procPath` names the open file itself, for libraries that only open by path. */
export interface ConfinedFile {
  fd: number;
  procPath: string;
  /** Where the open file is, read from the descriptor. */
  realPath: string;
  dev: number;
  ino: number;
  close(): void;
}

const inside = (dir: string, child: string) => {
  const rel = relative(dir, child);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
};

/**
 * Opens `path` read-only and proves, from the descriptor rather than the path, that it is a
 * regular file inside one of `dirs`: a path checked and then opened can be swapped for a
 * symlink in between (a check-then-use race); the descriptor cannot. O_NONBLOCK so that a FIFO
 * planted there cannot block the open; a regular file ignores it.
 */
export function openConfined(path: string, dirs: readonly string[]): ConfinedFile {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw new ConfinedFileRefused('unreadable', (err as NodeJS.ErrnoException).code);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ConfinedFileRefused('not_regular');
    const procPath = `/proc/self/fd/${fd}`;
    const realPath = readlinkSync(procPath);
    const realDirs = dirs.flatMap((d) => {
      try {
        return [realpathSync(resolve(d))];
      } catch {
        return [];
      }
    });
    if (!realDirs.some((d) => inside(d, realPath))) throw new ConfinedFileRefused('outside');
    return { fd, procPath, realPath, dev: st.dev, ino: st.ino, close: () => closeSync(fd) };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * After a library opened `f.realPath` by its path (SQLite does): true when every descriptor of
 * this process on that path is the checked file, and there is one. Proves the library read what
 * was checked, whatever happened to the path meanwhile.
 */
export function openedAsChecked(f: Pick<ConfinedFile, 'fd' | 'realPath' | 'dev' | 'ino'>): boolean {
  let found = false;
  for (const name of readdirSync('/proc/self/fd')) {
    if (name === String(f.fd)) continue;
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue; // closed meanwhile (the readdir's own descriptor among them)
    }
    if (target !== f.realPath) continue;
    const st = statSync(`/proc/self/fd/${name}`);
    if (st.dev !== f.dev || st.ino !== f.ino) return false;
    found = true;
  }
  return found;
}
