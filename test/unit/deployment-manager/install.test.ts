import { describe, expect, it } from 'vitest';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { pack, type Header } from 'tar-stream';
import { unpackRelease } from '../../../deployment-manager/install/unpack.js';
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

const unpack = async (entries: Entry[] | Buffer, root = tempDir('releases'), caps = { maxBytes: 1024 * 1024, maxEntries: 100 }) => ({
  root,
  result: await unpackRelease(Readable.from(Buffer.isBuffer(entries) ? entries : await tarball(entries)), join(root, 'releases'), caps),
});

describe('release unpacking', () => {
  it('unpacks a release under its version, with links inside it kept and set-id bits dropped', async () => {
    const { root, result } = await unpack(release());
    expect(result).toMatchObject({ version: '1.0.1', dir: join(root, 'releases', '1.0.1'), files: 4 });
    expect(readFileSync(join(result.dir, 'dist/agent/main.js'), 'utf8')).toBe('console.log("agent")');
    expect(statSync(join(result.dir, 'dist/agent/main.js')).mode & 0o7777).toBe(0o755);
    expect(readlinkSync(join(result.dir, 'node_modules/.bin/tool'))).toBe('../tool/cli.js');
    expect(readdirSync(join(root, 'releases'))).toEqual(['1.0.1']); // no staging left
  });

  const refusals: [string, Entry[] | (() => Promise<Buffer>), string][] = [
    ['an absolute path', release('1.0.1', [{ name: '/etc/cron.d/evil', body: 'x' }]), 'release tarball: absolute path "/etc/cron.d/evil"'],
    ['a path with ..', release('1.0.1', [{ name: 'dist/../../evil.js', body: 'x' }]), 'release tarball: path "dist/../../evil.js" leaves the release directory'],
    ['a symlink leaving it', release('1.0.1', [{ name: 'dist/passwd', type: 'symlink', linkname: '../../../../etc/passwd' }]), 'release tarball: link "dist/passwd" points outside the release ("../../../../etc/passwd")'],
    ['an absolute symlink', release('1.0.1', [{ name: 'dist/passwd', type: 'symlink', linkname: '/etc/passwd' }]), 'release tarball: link "dist/passwd" points outside the release ("/etc/passwd")'],
    ['a hard link', release('1.0.1', [{ name: 'dist/h', type: 'link', linkname: 'dist/lib/x.js' }]), 'release tarball: link entry "dist/h" is not allowed in a release'],
    ['a device', release('1.0.1', [{ name: 'dev/sda', type: 'block-device' }]), 'release tarball: block-device entry "dev/sda" is not allowed in a release'],
    ['no package.json', release('1.0.1').slice(1), 'release tarball: no readable package.json at its top'],
    ['another package', [{ name: 'package.json', body: '{"name":"evil","version":"1.0.0"}' }, ...release().slice(1)], 'release tarball: package.json is not a fort release with a version'],
    ['no agent', release('1.0.1').filter((e) => e.name !== 'dist/agent/main.js'), 'release tarball: dist/agent/main.js is missing'],
    ['too big', release('1.0.1', [{ name: 'big.bin', body: 'x'.repeat(2 * 1024 * 1024) }]), 'release tarball: more than 1048576 bytes unpacked'],
    ['not gzip', async () => Buffer.from('plain text, not a tarball'), 'release tarball: not a readable gzip tar'],
  ];
  for (const [name, entries, why] of refusals) {
    it(`refuses ${name} and leaves nothing behind`, async () => {
      const root = tempDir('releases');
      mkdirSync(join(root, 'releases'));
      const input = typeof entries === 'function' ? await entries() : await tarball(entries);
      const err = await fortFailure(unpackRelease(Readable.from(input), join(root, 'releases'), { maxBytes: 1024 * 1024, maxEntries: 100 }));
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
