import { describe, expect, it } from 'vitest';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { pack, type Header } from 'tar-stream';
import {
  removeUnpackLeftovers,
  unpackRelease,
  type UnpackOptions,
} from '../../../deployment-manager/install/unpack.js';
import { currentRelease, switchCurrent } from '../../../deployment-manager/install/current.js';
import { FortError } from '../../../lib/errors.js';
import { fortFailure } from '../../helpers/assertions.js';
import { tempDir } from '../../helpers/fort.js';

type Entry = Partial<Header> & Pick<Header, 'name'> & { body?: string };

/** A gzip tar built entry by entry, so a test can put anything in it (as an attacker could). */
async function tarball(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c) => void chunks.push(c as Buffer));
  const done = new Promise<void>((r) => p.on('end', () => r()));
  for (const { body, ...h } of entries) p.entry(h, body ?? '');
  p.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

const release = (version = '1.0.1', extra: Entry[] = []): Entry[] => [
  { name: 'package.json', body: JSON.stringify({ name: 'fort', version }) },
  { name: 'dist/agent/main.js', body: 'console.log("agent")', mode: 0o4755 },
  { name: 'dist/lib/x.js', body: 'export {}' },
  { name: 'node_modules/.bin/tool', type: 'symlink', linkname: '../tool/cli.js' },
  { name: 'node_modules/tool/cli.js', body: '#!/usr/bin/env node' },
  ...extra,
];

const unpack = async (
  entries: Entry[] | Buffer,
  root = tempDir('releases'),
  caps: UnpackOptions = { maxBytes: 1024 * 1024, maxEntries: 100 },
) => ({
  root,
  result: await unpackRelease(
    Readable.from(Buffer.isBuffer(entries) ? entries : await tarball(entries)),
    join(root, 'releases'),
    caps,
  ),
});

/** Mode bits of every directory and file under `dir` (links have none of their own), by relative path. */
function modes(dir: string): Record<string, number> {
  const out: Record<string, number> = { '.': statSync(dir).mode & 0o7777 };
  for (const rel of readdirSync(dir, { recursive: true }) as string[]) {
    const st = lstatSync(join(dir, rel));
    if (!st.isSymbolicLink()) out[rel] = st.mode & 0o7777;
  }
  return out;
}

/** Everything under `dir`: files with their content, links with their target, directories. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of readdirSync(dir, { recursive: true }) as string[]) {
    const p = join(dir, rel);
    const st = lstatSync(p);
    out[rel] = st.isSymbolicLink()
      ? `link ${readlinkSync(p)}`
      : st.isDirectory()
        ? 'dir'
        : `file ${readFileSync(p, 'utf8')}`;
  }
  return out;
}

describe('release unpacking', () => {
  it('unpacks a release under its version, with links inside it kept and set-id bits dropped', async () => {
    const { root, result } = await unpack(release());
    expect(result).toMatchObject({ version: '1.0.1', dir: join(root, 'releases', '1.0.1'), files: 4 });
    expect(readFileSync(join(result.dir, 'dist/agent/main.js'), 'utf8')).toBe('console.log("agent")');
    expect(statSync(join(result.dir, 'dist/agent/main.js')).mode & 0o7777).toBe(0o755);
    expect(readlinkSync(join(result.dir, 'node_modules/.bin/tool'))).toBe('../tool/cli.js');
    expect(readdirSync(join(root, 'releases'))).toEqual(['1.0.1']); // no staging left
  });

  it('gives every directory 0755 and every file 0644, or 0755 with an execute bit, under a umask of 0077', async () => {
    const umask = process.umask(0o077); // the deployment manager's unit (UMask=0077); the agent, another user, must read the release
    try {
      const { root, result } = await unpack(
        release('1.0.1', [
          { name: 'bin/', type: 'directory', mode: 0o700 },
          { name: 'bin/run', body: 'x', mode: 0o700 },
          { name: 'bin/group-exec', body: 'x', mode: 0o610 },
          { name: 'etc/secret', body: 'x', mode: 0o600 },
          { name: 'etc/open', body: 'x', mode: 0o666 },
        ]),
      );
      expect(modes(result.dir)).toEqual({
        '.': 0o755,
        bin: 0o755,
        'bin/run': 0o755,
        'bin/group-exec': 0o755,
        dist: 0o755,
        'dist/agent': 0o755,
        'dist/agent/main.js': 0o755,
        'dist/lib': 0o755,
        'dist/lib/x.js': 0o644,
        etc: 0o755,
        'etc/open': 0o644,
        'etc/secret': 0o644,
        node_modules: 0o755,
        'node_modules/.bin': 0o755,
        'node_modules/tool': 0o755,
        'node_modules/tool/cli.js': 0o644,
        'package.json': 0o644,
      });
      expect(statSync(join(root, 'releases')).mode & 0o7777).toBe(0o755); // created by the unpack, walked by the agent
    } finally {
      process.umask(umask);
    }
  });

  // Each link is harmless on its own (its lexical target is inside); through the links already
  // on disk they reach out of the release: `d/e` is really `e -> ..` (the releases directory),
  // then `e/f` is `releases/f -> ..` (the directory around it), and `e/f/x` would be written there.
  it('refuses an entry under a link already unpacked, and writes nothing outside the release', async () => {
    const root = tempDir('releases');
    mkdirSync(join(root, 'releases'));
    writeFileSync(join(root, 'sentinel'), 'untouched');
    const before = tree(root);
    const chain: Entry[] = [
      { name: 'd', type: 'symlink', linkname: '.' },
      { name: 'd/e', type: 'symlink', linkname: '..' },
      { name: 'e/f', type: 'symlink', linkname: '..' },
      { name: 'e/f/x', body: 'escaped' },
    ];
    const err = await fortFailure(unpack(release('1.0.1', chain), root));
    expect(err.code).toBe('FORT_ERR_ARTIFACT');
    expect(err.message).toBe('release tarball: path "d/e" passes through the link "d"');
    expect(tree(root)).toEqual(before);
  });

  it('refuses a file under a link, even one pointing inside the release', async () => {
    const root = tempDir('releases');
    mkdirSync(join(root, 'releases'));
    const err = await fortFailure(
      unpack(
        release('1.0.1', [
          { name: 'lib', type: 'symlink', linkname: 'dist/lib' },
          { name: 'lib/y.js', body: 'x' },
        ]),
        root,
      ),
    );
    expect(err.message).toBe('release tarball: path "lib/y.js" passes through the link "lib"');
    expect(readdirSync(join(root, 'releases'))).toEqual([]);
  });

  // `z`'s lexical target is `x`, but `x/y` is a link to the release itself, so `z` is the releases directory.
  it('refuses a link that resolves outside the release through another link', async () => {
    const root = tempDir('releases');
    mkdirSync(join(root, 'releases'));
    writeFileSync(join(root, 'sentinel'), 'untouched');
    const before = tree(root);
    const err = await fortFailure(
      unpack(
        release('1.0.1', [
          { name: 'x/', type: 'directory' },
          { name: 'x/y', type: 'symlink', linkname: '..' },
          { name: 'z', type: 'symlink', linkname: 'x/y/..' },
        ]),
        root,
      ),
    );
    expect(err.code).toBe('FORT_ERR_ARTIFACT');
    expect(err.message).toBe('release tarball: link "z" resolves outside the release');
    expect(tree(root)).toEqual(before);
  });

  it('refuses to replace the running or the previous release, and leaves it as it was', async () => {
    for (const as of ['running', 'previous'] as const) {
      const root = tempDir('releases');
      const { result } = await unpack(release('1.0.1'), root);
      writeFileSync(join(result.dir, 'marker'), as);
      const before = tree(root);
      const err = await fortFailure(
        unpack(release('1.0.1'), root, { maxBytes: 1024 * 1024, maxEntries: 100, protect: { [as]: '1.0.1' } }),
      );
      expect(err.code).toBe('FORT_ERR_ARTIFACT');
      expect(err.message).toBe(`release 1.0.1 is already installed (${as}); an update must carry a new version`);
      expect(tree(root)).toEqual(before); // its files untouched, no staging left
    }
  });

  it('replaces a leftover directory of the same version that is neither running nor previous', async () => {
    const root = tempDir('releases');
    mkdirSync(join(root, 'releases', '1.0.1'), { recursive: true });
    writeFileSync(join(root, 'releases', '1.0.1', 'half-installed'), '');
    const { result } = await unpack(release('1.0.1'), root, {
      maxBytes: 1024 * 1024,
      maxEntries: 100,
      protect: { running: '1.0.0', previous: '0.9.0' },
    });
    expect(readdirSync(result.dir).sort()).toEqual(['dist', 'node_modules', 'package.json']);
  });

  it('removes what a killed unpack left before it starts', async () => {
    const root = tempDir('releases');
    mkdirSync(join(root, 'releases', '.unpack-4242-1700000000000.partial', 'dist'), { recursive: true });
    writeFileSync(join(root, 'releases', '.unpack-4242-1700000000000.partial', 'dist', 'half.js'), 'x');
    mkdirSync(join(root, 'releases', '1.0.0'));
    await unpack(release('1.0.1'), root);
    expect(readdirSync(join(root, 'releases')).sort()).toEqual(['1.0.0', '1.0.1']);
    // The deployment manager may also call it at start; a releases directory not made yet is nothing to clean.
    await removeUnpackLeftovers(join(root, 'not-yet'));
  });

  // Files are fsynced in batches, each file held open until its batch's fsync.
  const openFds = () => readdirSync('/proc/self/fd').length;
  const many = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `dist/many/f${i}.js`, body: `// ${i}` }));

  it('unpacks more files than a sync batch holds, every one whole, and keeps no descriptor open', async () => {
    const before = openFds();
    const { root } = await unpack(release('1.0.1', many(150)), tempDir('releases'), {
      maxBytes: 1024 * 1024,
      maxEntries: 1000,
    });
    expect(openFds()).toBe(before);
    const files = readdirSync(join(root, 'releases', '1.0.1', 'dist', 'many'));
    expect(files).toHaveLength(150);
    expect(readFileSync(join(root, 'releases', '1.0.1', 'dist', 'many', 'f149.js'), 'utf8')).toBe('// 149');
  });

  it('closes the files it had written when a later entry is refused', async () => {
    const root = tempDir('releases');
    const before = openFds();
    const err = await fortFailure(
      unpackRelease(
        Readable.from(await tarball(release('1.0.1', [...many(100), { name: '/etc/cron.d/evil', body: 'x' }]))),
        join(root, 'releases'),
        { maxBytes: 1024 * 1024, maxEntries: 1000 },
      ),
    );
    expect(err.message).toBe('release tarball: absolute path "/etc/cron.d/evil"');
    expect(openFds()).toBe(before);
    expect(readdirSync(join(root, 'releases'))).toEqual([]);
  });

  const refusals: [string, Entry[] | (() => Promise<Buffer>), string][] = [
    [
      'an absolute path',
      release('1.0.1', [{ name: '/etc/cron.d/evil', body: 'x' }]),
      'release tarball: absolute path "/etc/cron.d/evil"',
    ],
    [
      'a path with ..',
      release('1.0.1', [{ name: 'dist/../../evil.js', body: 'x' }]),
      'release tarball: path "dist/../../evil.js" leaves the release directory',
    ],
    [
      'a symlink leaving it',
      release('1.0.1', [{ name: 'dist/passwd', type: 'symlink', linkname: '../../../../etc/passwd' }]),
      'release tarball: link "dist/passwd" points outside the release ("../../../../etc/passwd")',
    ],
    [
      'an absolute symlink',
      release('1.0.1', [{ name: 'dist/passwd', type: 'symlink', linkname: '/etc/passwd' }]),
      'release tarball: link "dist/passwd" points outside the release ("/etc/passwd")',
    ],
    [
      'a dangling link',
      release('1.0.1', [{ name: 'dist/gone', type: 'symlink', linkname: 'nothing-here' }]),
      'release tarball: link "dist/gone" points to nothing',
    ],
    [
      'a link loop',
      release('1.0.1', [
        { name: 'dist/a', type: 'symlink', linkname: 'b' },
        { name: 'dist/b', type: 'symlink', linkname: 'a' },
      ]),
      'release tarball: link "dist/a" points to nothing',
    ],
    [
      'a hard link',
      release('1.0.1', [{ name: 'dist/h', type: 'link', linkname: 'dist/lib/x.js' }]),
      'release tarball: link entry "dist/h" is not allowed in a release',
    ],
    [
      'a device',
      release('1.0.1', [{ name: 'dev/sda', type: 'block-device' }]),
      'release tarball: block-device entry "dev/sda" is not allowed in a release',
    ],
    ['no package.json', release('1.0.1').slice(1), 'release tarball: no readable package.json at its top'],
    [
      'another package',
      [{ name: 'package.json', body: '{"name":"evil","version":"1.0.0"}' }, ...release().slice(1)],
      'release tarball: package.json is not a fort release with a version',
    ],
    [
      'no agent',
      release('1.0.1').filter((e) => e.name !== 'dist/agent/main.js'),
      'release tarball: dist/agent/main.js is missing',
    ],
    [
      'too big',
      release('1.0.1', [{ name: 'big.bin', body: 'x'.repeat(2 * 1024 * 1024) }]),
      'release tarball: more than 1048576 bytes unpacked',
    ],
    [
      'not a tar',
      async () => Buffer.from('plain text, not a tarball'),
      'release tarball: not a readable tar or gzip tar',
    ],
  ];
  for (const [name, entries, why] of refusals) {
    it(`refuses ${name} and leaves nothing behind`, async () => {
      const root = tempDir('releases');
      mkdirSync(join(root, 'releases'));
      const input = typeof entries === 'function' ? await entries() : await tarball(entries);
      const err = await fortFailure(
        unpackRelease(Readable.from(input), join(root, 'releases'), { maxBytes: 1024 * 1024, maxEntries: 100 }),
      );
      expect(err).toBeInstanceOf(FortError);
      expect(err.message.startsWith(why)).toBe(true);
      expect(readdirSync(join(root, 'releases'))).toEqual([]);
      expect(existsSync('/etc/cron.d/evil')).toBe(false);
    });
  }
});

describe('current release switch', () => {
  it('points current at a release atomically and reads it back', () => {
    const root = tempDir('current');
    mkdirSync(join(root, 'releases', '1.0.0'), { recursive: true });
    mkdirSync(join(root, 'releases', '1.0.1'), { recursive: true });
    expect(currentRelease(root)).toBeUndefined();
    switchCurrent(root, '1.0.0');
    expect(currentRelease(root)).toBe('1.0.0');
    switchCurrent(root, '1.0.1');
    expect(currentRelease(root)).toBe('1.0.1');
    expect(lstatSync(join(root, 'current')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(root, 'current'))).toBe(join('releases', '1.0.1'));
    expect(readdirSync(root).sort()).toEqual(['current', 'releases']); // no temp link left
  });
});
