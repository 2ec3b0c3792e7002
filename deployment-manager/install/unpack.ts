import { constants, createWriteStream } from 'node:fs';
import {
  chmod,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  symlink,
  type FileHandle,
} from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract, type Header } from 'tar-stream';
import { isDiskFull } from '../../lib/disk-full.js';
import { FortError } from '../../lib/errors.js';
import { fsyncDir } from '../../lib/files.js';
import { writebackKicker } from '../../lib/writeback.js';

export interface UnpackOptions {
  /** Bytes of all files together (uncompressed). */
  maxBytes: number;
  maxEntries: number;
  /** Installed releases an update must never replace: what `current` runs, and what a rollback goes back to. */
  protect?: { running?: string | null | undefined; previous?: string | null | undefined } | undefined;
}

const INFLATE_CHUNK_BYTES = 1024 * 1024;
/**
 * Files written and not yet fsynced, at most: their fsyncs run together (the disk flushes them
 * at once, not one file after another: 140 small files in 35 ms instead of 80), and then the
 * next files go on. Bounded: each holds an open descriptor.
 */
const SYNC_BATCH_FILES = 64;

/** Written files whose fsync is still to come, fsynced together. */
function deferredSyncs() {
  const open: { fh: FileHandle; writeback: ReturnType<typeof writebackKicker> }[] = [];
  const each = async (f: (typeof open)[number], sync: boolean) => {
    try {
      await f.writeback.settle();
      if (sync) await f.fh.sync();
    } finally {
      await f.fh.close().catch(() => undefined);
    }
  };
  return {
    add: (fh: FileHandle, writeback: ReturnType<typeof writebackKicker>) => open.push({ fh, writeback }),
    full: () => open.length >= SYNC_BATCH_FILES,
    /** Fsyncs and closes them all; rejects with the first failure, once all are closed. */
    async sync(): Promise<void> {
      const results = await Promise.allSettled(open.splice(0).map((f) => each(f, true)));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    /** Closes them without a sync (the unpack failed; its staging directory goes). */
    async drop(): Promise<void> {
      await Promise.allSettled(open.splice(0).map((f) => each(f, false)));
    },
  };
}

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
/** A verified release waiting to be installed (`renameStaged`), e.g. `.verified-<deployment>`. */
const VERIFIED = /^\.verified-/;

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

/**
 * Removes every staging directory a killed unpack left and, when `verified` is given, every
 * verified release waiting to be installed but `verified.keep` (the one the update state names).
 * Only safe under the work lock (one unpack at a time).
 */
export async function removeUnpackLeftovers(
  releasesDir: string,
  verified?: { keep: string | undefined },
): Promise<void> {
  const names = await readdir(releasesDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  for (const name of names) {
    const stale = STAGING.test(name) || (verified && VERIFIED.test(name) && join(releasesDir, name) !== verified.keep);
    if (stale) await rm(join(releasesDir, name), { recursive: true, force: true });
  }
}

/** `<releasesDir>/.verified-<name>`: where a verified release waits to be installed. */
export const verifiedReleaseDir = (releasesDir: string, name: string) =>
  join(releasesDir, `.verified-${name.replace(/[^A-Za-z0-9._-]/g, '_')}`);

/** A release unpacked and checked under a dot-named directory of the releases directory, not yet under its version. */
export interface StagedRelease {
  dir: string;
  version: string;
  files: number;
  bytes: number;
}

/** A gzip member starts with these two bytes; a release tarball may be gzipped or a plain tar. */
const isGzip = (b: Buffer) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/**
 * The tar bytes of a release tarball, gunzipped when it is gzipped: a release inside an artifact
 * is a plain tar (the artifact's data/0000.tar.gz compresses it once), the tarball of `npm run
 * release` and older artifacts a .tgz.
 */
async function* tarBytes(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const head: Buffer = first.value;
  async function* all(): AsyncGenerator<Buffer> {
    yield head;
    for (;;) {
      const n = await it.next();
      if (n.done) return;
      yield n.value;
    }
  }
  if (!isGzip(head)) {
    yield* all();
    return;
  }
  // 1 MB pieces, not zlib's 16 KB: each is a thread-pool round trip, a pass through the tar
  // parser and a write. A 200 MB release unpacks with about a third of the CPU (issue 19).
  const gunzip = createGunzip({ chunkSize: INFLATE_CHUNK_BYTES });
  const feeding = pipeline(all(), gunzip);
  feeding.catch(() => undefined); // its failure comes out of the iteration below too
  yield* gunzip as AsyncIterable<Buffer>;
  await feeding;
}

/**
 * Unpacks a release tarball (a tar of `package.json`, `dist/`, production `node_modules`, gzipped
 * or not) into `<releasesDir>/.unpack-<pid>-<ms>.partial` and checks it is a fort release; the
 * caller renames it (`commitRelease`) or removes it. Refused, with the staging directory removed:
 * absolute paths, `..`, entries under a link, symbolic links that resolve outside the release or
 * to nothing, hard links, devices and FIFOs, more than the size or entry caps, a tarball that is
 * not a fort release (no `package.json` of `fort` with a version, no `dist/agent/main.js`).
 * Directories are 0755, files 0644 or 0755 whatever the umask; every file is fsynced before it
 * resolves (in batches, see SYNC_BATCH_FILES).
 *
 * It may be fed bytes still being verified (an artifact's payload while it downloads): nothing
 * outside the staging directory is written, and the stream errors before its end if they fail.
 */
export async function unpackToStaging(
  tarball: AsyncIterable<Buffer>,
  releasesDir: string,
  opts: Pick<UnpackOptions, 'maxBytes' | 'maxEntries'>,
): Promise<StagedRelease> {
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
  const syncs = deferredSyncs();
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
          const writeback = writebackKicker(fh.fd);
          try {
            await fh.chmod(fileMode(header));
            await pipeline(
              stream,
              async function* (chunks: AsyncIterable<unknown>) {
                for await (const chunk of chunks) {
                  writeback.wrote((chunk as Buffer).length);
                  yield chunk;
                }
              },
              createWriteStream('', { fd: fh.fd, autoClose: false, highWaterMark: 1024 * 1024 }),
            );
          } catch (err) {
            // The write's own error (ENOSPC) is the one to report, not what closing after it says.
            await writeback.settle().catch(() => undefined);
            await fh.close().catch(() => undefined);
            throw err;
          }
          syncs.add(fh, writeback);
          if (syncs.full()) await syncs.sync();
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
    await pipeline(tarBytes(tarball), tar);
    await syncs.sync();
    await checkLinks(staging, links);
    return { dir: staging, version: await releaseVersion(staging), files, bytes };
  } catch (err) {
    await syncs.drop();
    await rm(staging, { recursive: true, force: true });
    // A full disk is no fault of the tarball's: the caller waits for space rather than refusing it.
    if (err instanceof FortError || isDiskFull(err)) throw err;
    throw refuse(`not a readable tar or gzip tar (${(err as Error).message})`);
  }
}

/**
 * Renames a staged release (`dir`, a dot-name in `releasesDir`) to `<releasesDir>/<version>` (a
 * release directory under its final name is always complete), refusing the version of a
 * protected (running or previous) release. The version is read again from the staged release.
 */
export async function commitRelease(
  dir: string,
  releasesDir: string,
  protect?: UnpackOptions['protect'],
): Promise<{ dir: string; version: string }> {
  const version = await releaseVersion(dir);
  const installed = (['running', 'previous'] as const).find((as) => protect?.[as] === version);
  if (installed)
    throw new FortError(
      'FORT_ERR_ARTIFACT',
      `release ${version} is already installed (${installed}); an update must carry a new version`,
      { fatal: false },
    );
  const to = join(releasesDir, version);
  await rm(to, { recursive: true, force: true }); // a half-installed leftover of this version, neither running nor previous
  await rename(dir, to);
  fsyncDir(releasesDir);
  return { dir: to, version };
}

/** unpackToStaging then commitRelease: a tarball already verified (or trusted) straight to `<releasesDir>/<version>`. */
export async function unpackRelease(
  tarball: AsyncIterable<Buffer>,
  releasesDir: string,
  opts: UnpackOptions,
): Promise<StagedRelease> {
  const staged = await unpackToStaging(tarball, releasesDir, opts);
  try {
    return { ...staged, ...(await commitRelease(staged.dir, releasesDir, opts.protect)) };
  } catch (err) {
    await rm(staged.dir, { recursive: true, force: true });
    throw err;
  }
}

/** A staged release under another dot-name of the releases directory (kept across steps: not a leftover of a killed unpack). */
export async function renameStaged(staged: StagedRelease, to: string): Promise<StagedRelease> {
  await rm(to, { recursive: true, force: true });
  await rename(staged.dir, to);
  fsyncDir(dirname(to));
  return { ...staged, dir: to };
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
