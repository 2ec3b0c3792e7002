import { constants, createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readFile, realpath, rename, rm, symlink } from 'node:fs/promises';
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
  /** Installed releases an update must never replace: what `current` runs, and what a rollback goes back to. */
  protect?: { running?: string | null | undefined; previous?: string | null | undefined } | undefined;
}

export interface UnpackedRelease {
  dir: string;
  version: string;
  files: number;
  bytes: number;
}

const INFLATE_CHUNK_BYTES = 1024 * 1024;

/** The limits a release artifact's tarball is unpacked with: 4× the artifact cap (gzip), 200 000 entries. */
export const releaseUnpackLimits = (maxArtifactBytes: number) => ({
  maxBytes: 4 * maxArtifactBytes,
  maxEntries: 200_000,
});

const refuse = (why: string) => new FortError('FORT_ERR_ARTIFACT', `release tarball: ${why}`, { fatal: false });

// Set explicitly (chmod after creating) so the release reads the same under the unit's UMask=0077:
// the agent, another user, must read it. Files are 0755 when the header has any execute bit.
const DIR_MODE = 0o755;
const fileMode = (header: Header) => ((header.mode ?? 0o644) & 0o111 ? 0o755 : 0o644);

/** An unpack's staging directory; one that is there when an unpack starts was left by a kill -9. */
const STAGING = /^\.unpack-.*\.partial$/;

/** A tar member name as a clean path relative to the release ('' for its top), or a refusal. */
function memberPath(name: string): string {
  if (name.includes('\0')) throw refuse(`entry name with a NUL byte`);
  const clean = name.replace(/^\.\/+/, '');
  if (isAbsolute(clean)) throw refuse(`absolute path ${JSON.stringify(name)}`);
  if (normalize(clean).split(sep).includes('..') || clean.split('/').includes('..'))
    throw refuse(`path ${JSON.stringify(name)} leaves the release directory`);
  return normalize(clean).replace(/\/+$/, '').replace(/^\.$/, '');
}

const inside = (root: string, p: string) => {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

/**
 * Makes the directories `rel` and those above it inside `staging` (0755), refusing to pass
 * through a link or a file: mkdir and open follow links already on disk, so with lexical checks
 * alone `d -> .`, `d/e -> ..`, `e/f -> ..` would let `e/f/x` be written outside the release.
 * `made` holds the directories already seen to be real ones (nothing replaces them afterwards).
 */
async function makeDirs(staging: string, rel: string, name: string, made: Set<string>): Promise<void> {
  let at = '';
  for (const part of rel === '' ? [] : rel.split('/')) {
    at = at ? `${at}/${part}` : part;
    if (made.has(at)) continue;
    const p = join(staging, at);
    const st = await lstat(p).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (st && !st.isDirectory())
      throw refuse(
        `path ${JSON.stringify(name)} passes through the ${st.isSymbolicLink() ? 'link' : 'file'} ${JSON.stringify(at)}`,
      );
    if (!st) await mkdir(p);
    await chmod(p, DIR_MODE);
    made.add(at);
  }
}

/** Removes every staging directory a killed unpack left. Only safe under the work lock (one unpack at a time). */
export async function removeUnpackLeftovers(releasesDir: string): Promise<void> {
  const names = await readdir(releasesDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  for (const name of names) if (STAGING.test(name)) await rm(join(releasesDir, name), { recursive: true, force: true });
}

/**
 * Unpacks a release tarball (gzip tar: `package.json`, `dist/`, production `node_modules`)
 * into `<releasesDir>/.unpack-<pid>-<ms>.partial`, then renames it to `<releasesDir>/<version>`:
 * a release directory under its final name is always complete. Refused before anything is
 * renamed: absolute paths, `..`, entries under a link, symbolic links that resolve outside the
 * release or to nothing, hard links, devices and FIFOs, more than the size or entry caps, a
 * tarball that is not a fort release (no `package.json` of `fort` with a version, no
 * `dist/agent/main.js`), and the version of a protected (running or previous) release.
 * Directories are 0755, files 0644 or 0755 whatever the umask; every file is fsynced.
 */
export async function unpackRelease(
  tarball: Readable,
  releasesDir: string,
  opts: UnpackOptions,
): Promise<UnpackedRelease> {
  const made = await mkdir(releasesDir, { recursive: true });
  for (let d = releasesDir; made !== undefined && inside(made, d); d = dirname(d)) await chmod(d, DIR_MODE);
  await removeUnpackLeftovers(releasesDir);
  const staging = join(releasesDir, `.unpack-${process.pid}-${Date.now()}.partial`);
  await mkdir(staging);
  await chmod(staging, DIR_MODE);
  const dirs = new Set<string>();
  const links: { rel: string; name: string }[] = [];
  let files = 0;
  let bytes = 0;
  let entries = 0;
  const tar = extract();
  tar.on('entry', (header: Header, stream, next) => {
    // Its failure is the whole unpack's, reported once through the pipeline below.
    stream.on('error', () => {});
    const name = header.name;
    const already = (err: NodeJS.ErrnoException) =>
      err.code === 'EEXIST' ? refuse(`entry ${JSON.stringify(name)} is there already`) : err;
    void (async () => {
      if (++entries > opts.maxEntries) throw refuse(`more than ${opts.maxEntries} entries`);
      const rel = memberPath(name);
      const target = join(staging, rel);
      switch (header.type) {
        case 'directory':
          await makeDirs(staging, rel, name, dirs);
          stream.resume();
          break;
        case 'file':
        case 'contiguous-file': {
          bytes += header.size ?? 0;
          if (bytes > opts.maxBytes) throw refuse(`more than ${opts.maxBytes} bytes unpacked`);
          await makeDirs(staging, dirname(rel).replace(/^\.$/, ''), name, dirs);
          // O_EXCL: never through (nor over) a link already there.
          const fh = await open(
            target,
            constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
            0o600,
          ).catch((err: NodeJS.ErrnoException) => {
            throw already(err);
          });
          try {
            await fh.chmod(fileMode(header));
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
          if (isAbsolute(to) || !inside(staging, resolve(dirname(target), to)))
            throw refuse(`link ${JSON.stringify(name)} points outside the release (${JSON.stringify(to)})`);
          await makeDirs(staging, dirname(rel).replace(/^\.$/, ''), name, dirs);
          await symlink(to, target).catch((err: NodeJS.ErrnoException) => {
            throw already(err);
          });
          links.push({ rel, name });
          stream.resume();
          break;
        }
        default:
          throw refuse(`${header.type} entry ${JSON.stringify(name)} is not allowed in a release`);
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
    // 1 MB pieces, not zlib's 16 KB: each is a thread-pool round trip, a pass through the tar
    // parser and a write. A 200 MB release unpacks with about a third of the CPU (issue 19).
    await pipeline(tarball, createGunzip({ chunkSize: INFLATE_CHUNK_BYTES }), tar);
    await checkLinks(staging, links);
    const version = await releaseVersion(staging);
    const installed = (['running', 'previous'] as const).find((as) => opts.protect?.[as] === version);
    if (installed)
      throw new FortError(
        'FORT_ERR_ARTIFACT',
        `release ${version} is already installed (${installed}); an update must carry a new version`,
        { fatal: false },
      );
    const dir = join(releasesDir, version);
    await rm(dir, { recursive: true, force: true }); // a half-installed leftover of this version, neither running nor previous
    await rename(staging, dir);
    fsyncDir(releasesDir);
    return { dir, version, files, bytes };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    if (err instanceof FortError) throw err;
    throw refuse(`not a readable gzip tar (${(err as Error).message})`);
  }
}

/**
 * Every link must resolve inside the release: its lexical target cannot show that `x/y -> ..`
 * makes `z -> x/y/..` the releases directory. A dangling link is refused too: where it leads
 * cannot be checked, and a real release has none (`npm run release` with production
 * node_modules: only `node_modules/.bin/*`, all resolving inside).
 */
async function checkLinks(staging: string, links: { rel: string; name: string }[]): Promise<void> {
  const root = await realpath(staging);
  for (const { rel, name } of links) {
    const to = await realpath(join(staging, rel)).catch(() => undefined);
    if (to === undefined) throw refuse(`link ${JSON.stringify(name)} points to nothing`);
    if (!inside(root, to)) throw refuse(`link ${JSON.stringify(name)} resolves outside the release`);
  }
}

async function releaseVersion(dir: string): Promise<string> {
  let pkg: { name?: unknown; version?: unknown };
  try {
    pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as typeof pkg;
  } catch {
    throw refuse('no readable package.json at its top');
  }
  if (pkg.name !== 'fort' || typeof pkg.version !== 'string' || !/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(pkg.version))
    throw refuse('package.json is not a fort release with a version');
  try {
    await readFile(join(dir, 'dist', 'agent', 'main.js'));
  } catch {
    throw refuse('dist/agent/main.js is missing');
  }
  return pkg.version;
}
