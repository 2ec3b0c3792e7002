import {
  closeSync,
  constants,
  fsyncSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  unlinkSync,
} from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { ConfigError, FortError, TlsMaterialError } from './errors.js';

/**
 * Write a file so that a crash at any instant leaves either the old or the new content:
 * temp file in the same directory → fsync → rename → fsync of the directory.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    writeAll(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  fsyncDir(dir);
}

/** All of `buf` to `fd` (a write may take only part of it). */
export function writeAll(fd: number, buf: Uint8Array): void {
  for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off);
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Create a new secret file (0600). Refuses to replace an existing file unless `force`. */
export function writeSecretFile(path: string, data: string | Uint8Array, force = false): void {
  if (!force && existsSync(path)) {
    throw new FortError('FORT_ERR_FILE_EXISTS', `${path} already exists (use --force to overwrite)`);
  }
  writeFileAtomic(path, data, 0o600);
}

/** A 0600 PEM private key; a group/world-readable or unparsable file is a config error naming it. */
export function readPrivateKeyFile(path: string, what: string): KeyObject {
  assertPrivateFileMode(path, what);
  try {
    return createPrivateKey(readFileSync(path));
  } catch (err) {
    throw new ConfigError(path, [`not a PEM private key (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`]);
  }
}

/** Group- or world-accessible secrets are refused: a leaked key cannot be taken back. */
export function assertPrivateFileMode(path: string, what = 'key file'): void {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    throw new TlsMaterialError(
      `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      'FORT_ERR_TLS_MATERIAL',
      err,
    );
  }
  if ((mode & 0o077) !== 0) {
    throw new TlsMaterialError(
      `${what} ${path} has mode ${(mode & 0o777).toString(8).padStart(4, '0')}; it must not be readable by group or others (chmod 600 ${path})`,
      'FORT_ERR_SECRET_PERMISSIONS',
    );
  }
}

/** A file of `writeDirAtomic`. */
export interface DirFile {
  name: string;
  data: string | Uint8Array;
  mode: number;
}

const stagingPrefix = (dest: string) => `.${basename(dest)}.tmp-`;

/**
 * Creates the directory `dest` with these files so that a crash leaves it absent or complete:
 * every file written (fsynced) into a staging directory beside it, then one rename. Leftovers
 * of a crash are removed by `removeStaging`. Refuses an existing `dest`.
 */
export function writeDirAtomic(dest: string, files: readonly DirFile[]): void {
  if (existsSync(dest)) throw new FortError('FORT_ERR_FILE_EXISTS', `${dest} already exists`);
  const parent = dirname(dest);
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  const staging = mkdtempSync(join(parent, stagingPrefix(dest)));
  for (const f of files) writeFileAtomic(join(staging, f.name), f.data, f.mode);
  renameSync(staging, dest);
  fsyncDir(parent);
}

/**
 * Removes `dest` the same way round: one rename to a staging name (a crash leaves it gone, the
 * leftover for `removeStaging`), then its files.
 */
export function removeDirAtomic(dest: string): void {
  if (!existsSync(dest)) return;
  const parent = dirname(dest);
  const away = join(parent, `${stagingPrefix(dest)}removed-${randomBytes(6).toString('hex')}`);
  renameSync(dest, away);
  fsyncDir(parent);
  rmSync(away, { recursive: true, force: true });
}

/** What an interrupted `writeDirAtomic` / `removeDirAtomic` of `dest` left beside it (never used); their names. */
export function removeStaging(dest: string): string[] {
  const parent = dirname(dest);
  if (!existsSync(parent)) return [];
  const left = readdirSync(parent).filter((n) => n.startsWith(stagingPrefix(dest)));
  for (const n of left) rmSync(join(parent, n), { recursive: true, force: true });
  return left;
}
