import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, symlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { extract, type Header } from 'tar-stream';
import { FortError } from '../../lib/errors.js';
import { fsyncDir } from '../../lib/files.js';

export interface UnpackOptions {
  /** Bytes of all files together (uncompressed). */
  maxBytes: number;
  maxEntries: number;
}

export interface UnpackedRelease {
  dir: string;
  version: string;
  files: number;
  bytes: number;
}

const refuse = (why: string) => new FortError('FORT_ERR_ARTIFACT', `release tarball: ${why}`, { fatal: false });

/** A tar member name as a path inside the release, or a refusal. */
function memberPath(root: string, name: string): string {
  if (name.includes('\0')) throw refuse(`entry name with a NUL byte`);
  const clean = name.replace(/^\.\/+/, '');
  if (isAbsolute(clean)) throw refuse(`absolute path ${JSON.stringify(name)}`);
  if (normalize(clean).split(sep).includes('..') || clean.split('/').includes('..')) throw refuse(`path ${JSON.stringify(name)} leaves the release directory`);
  return join(root, clean);
}

const inside = (root: string, p: string) => {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

/**
 * Unpacks a release tarball (gzip tar: `package.json`, `dist/`, production `node_modules`)
 * into `<releasesDir>/.<version>.partial`, then renames it to `<releasesDir>/<version>`:
 * a release directory under its final name is always complete. Refused before anything is
 * renamed: absolute paths, `..`, symbolic links that resolve outside the release, hard links,
 * devices and FIFOs, more than the size or entry caps, and a tarball that is not a fort
 * release (no `package.json` of `fort` with a version, no `dist/agent/main.js`). Set-id bits
 * are dropped; every file is fsynced.
 */
export async function unpackRelease(tarball: Readable, releasesDir: string, opts: UnpackOptions): Promise<UnpackedRelease> {
  await mkdir(releasesDir, { recursive: true, mode: 0o755 });
  const staging = join(releasesDir, `.unpack-${process.pid}-${Date.now()}.partial`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { mode: 0o755 });
  let files = 0;
  let bytes = 0;
  let entries = 0;
  const tar = extract();
  tar.on('entry', (header: Header, stream, next) => {
    // Its failure is the whole unpack's, reported once through the pipeline below.
    stream.on('error', () => {});
    void (async () => {
      if (++entries > opts.maxEntries) throw refuse(`more than ${opts.maxEntries} entries`);
      const target = memberPath(staging, header.name);
      const mode = (header.mode ?? 0o644) & 0o777 & ~0o022;
      switch (header.type) {
        case 'directory':
          await mkdir(target, { recursive: true, mode: 0o755 });
          stream.resume();
          break;
        case 'file':
        case 'contiguous-file': {
          bytes += header.size ?? 0;
          if (bytes > opts.maxBytes) throw refuse(`more than ${opts.maxBytes} bytes unpacked`);
          await mkdir(dirname(target), { recursive: true, mode: 0o755 });
          const fh = await open(target, 'wx', mode);
          try {
            await pipeline(stream, createWriteStream('', { fd: fh.fd, autoClose: false }));
            await fh.sync();
          } finally {
            await fh.close();
          }
          files++;
          break;
        }
        case 'symlink': {
          const to = header.linkname ?? '';
          if (isAbsolute(to) || !inside(staging, resolve(dirname(target), to))) throw refuse(`link ${JSON.stringify(header.name)} points outside the release (${JSON.stringify(to)})`);
          await mkdir(dirname(target), { recursive: true, mode: 0o755 });
          await symlink(to, target);
          stream.resume();
          break;
        }
        default:
          throw refuse(`${header.type} entry ${JSON.stringify(header.name)} is not allowed in a release`);
      }
    })().then(
      () => next(),
      (err: unknown) => {
        stream.resume();
        tar.destroy(err as Error);
      },
    );
  });
  try {
    await pipeline(tarball, createGunzip(), tar);
    const version = await releaseVersion(staging);
    const dir = join(releasesDir, version);
    await rm(dir, { recursive: true, force: true }); // a half-installed leftover of this version
    await rename(staging, dir);
    fsyncDir(releasesDir);
    return { dir, version, files, bytes };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    if (err instanceof FortError) throw err;
    throw refuse(`not a readable gzip tar (${(err as Error).message})`);
  }
}

async function releaseVersion(dir: string): Promise<string> {
  let pkg: { name?: unknown; version?: unknown };
  try {
    pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as typeof pkg;
  } catch {
    throw refuse('no readable package.json at its top');
  }
  if (pkg.name !== 'fort' || typeof pkg.version !== 'string' || !/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(pkg.version)) throw refuse('package.json is not a fort release with a version');
  try {
    await readFile(join(dir, 'dist', 'agent', 'main.js'));
  } catch {
    throw refuse('dist/agent/main.js is missing');
  }
  return pkg.version;
}
