import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { FortError } from '../../lib/errors.js';

/**
 * Source files of app definitions live under `reloads.data_dirs` and nowhere else: a
 * definition comes from an admin API, and whoever can register one must not be able to
 * read /etc/shadow or the agent's own keys into an app. Every check is made on the real
 * path (symlinks followed), and the connectors open that real path.
 */

/** `child` equals `dir` or lies below it (both absolute and normalised). */
export function isInside(dir: string, child: string): boolean {
  const rel = relative(dir, child);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** The data dirs that exist, as real paths (a data dir may itself be a symlink, e.g. to a mount). */
function realDataDirs(dataDirs: string[]): string[] {
  const out: string[] = [];
  for (const d of dataDirs) {
    try {
      out.push(realpathSync(resolve(d)));
    } catch {
      // A missing data dir holds no files; the others still count.
    }
  }
  return out;
}

const fail = (field: string, why: string) => new FortError('FORT_ERR_DEFINITION', `${field}: ${why}`);

/**
 * The real path of a source file named in a definition: relative to the first data dir
 * that has it, or absolute inside one. Throws FORT_ERR_DEFINITION `<field>: <why>` when
 * the path escapes the data dirs (`..`, absolute elsewhere, a symlink pointing out), the
 * file does not exist or is not a regular file.
 */
export function resolveDataFile(path: string, dataDirs: string[], field: string): string {
  if (path.includes('\0')) throw fail(field, 'must not contain NUL characters');
  if (dataDirs.length === 0) throw fail(field, 'no reloads.data_dirs are configured, so no file may be read');
  const lexicalDirs = dataDirs.map((d) => resolve(d));
  const realDirs = realDataDirs(dataDirs);
  let candidates: string[];
  if (isAbsolute(path)) {
    const abs = resolve(path);
    // Named through a data dir as configured, or through its real path (a data dir may be a symlink).
    if (![...lexicalDirs, ...realDirs].some((d) => isInside(d, abs))) throw fail(field, 'is outside reloads.data_dirs');
    candidates = [abs];
  } else {
    if (lexicalDirs.some((d) => !isInside(d, resolve(d, path))))
      throw fail(field, 'escapes reloads.data_dirs (through "..")');
    candidates = lexicalDirs.map((d) => resolve(d, path));
  }
  for (const candidate of candidates) {
    let real: string;
    try {
      real = realpathSync(candidate);
    } catch {
      continue; // not in this data dir: try the next one
    }
    if (!realDirs.some((d) => isInside(d, real)))
      throw fail(field, 'resolves (through a symbolic link) outside reloads.data_dirs');
    // Not a FIFO or a device: reading one could block a reload forever.
    if (!statSync(real).isFile()) throw fail(field, 'is not a regular file');
    return real;
  }
  throw fail(field, isAbsolute(path) ? 'file does not exist' : 'file does not exist in any of reloads.data_dirs');
}
