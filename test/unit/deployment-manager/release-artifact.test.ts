import { beforeAll, describe, expect, it } from 'vitest';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { stageReleaseArtifact } from '../../../deployment-manager/artifact/release-payload.js';
import { parsePublicKeys, type ArtifactPublicKey } from '../../../deployment-manager/artifact/keys.js';
import { commitRelease, verifiedReleaseDir } from '../../../deployment-manager/install/unpack.js';
import { fortFailure } from '../../helpers/assertions.js';
import { tempDir } from '../../helpers/fort.js';
import {
  buildArtifact,
  flipByte,
  rewriteArtifact,
  rewritePayload,
  rsaKeyPair,
  writeTar,
  type KeyPair,
  type TarEntry,
} from '../../helpers/mender.js';

const DEVICE = 'dev1';
const BIG = 3 * 1024 * 1024;

/** A release as a plain tar (what `npm run release` puts in an artifact), with a 3 MB file so it streams in many pieces. */
const releaseTar = (version: string, extra: TarEntry[] = []) =>
  writeTar([
    { name: 'package.json', data: Buffer.from(JSON.stringify({ name: 'fort', version })) },
    { name: 'dist/agent/main.js', data: Buffer.from('console.log("agent")') },
    { name: 'padding.bin', data: Buffer.alloc(BIG, 7) },
    ...extra,
  ]);

let dir: string;
let signing: KeyPair;
let keys: ArtifactPublicKey[];

beforeAll(() => {
  dir = tempDir('release-artifact');
  signing = rsaKeyPair(dir, 'sign');
  keys = parsePublicKeys(readFileSync(signing.public, 'utf8'), signing.public);
});

async function artifact(name: string, payloads: { file: string; data: Buffer }[], sign = true): Promise<string> {
  const files = payloads.map((p) => {
    const f = join(dir, p.file);
    writeFileSync(f, p.data);
    return f;
  });
  return buildArtifact({
    dir,
    name,
    deviceType: DEVICE,
    payloadFile: files,
    ...(sign ? { sign: { key: signing.private } } : {}),
  });
}

function stage(file: string, releases: string, allowUnsigned = false) {
  return stageReleaseArtifact(
    createReadStream(file),
    { keys, deviceType: DEVICE, allowUnsigned, maxBytes: 256 * 1024 * 1024 },
    releases,
    verifiedReleaseDir(releases, 'd1'),
  );
}

/** Everything in the releases directory, dot-names (staging, verified) included. */
const left = (releases: string) => (existsSync(releases) ? readdirSync(releases).sort() : []);

describe('stageReleaseArtifact: verified and unpacked in one pass', () => {
  it('unpacks a plain-tar release while verifying, under .verified-<id>; commitRelease installs it under its version', async () => {
    const file = await artifact('fort-1.0.1', [{ file: 'fort-agent-1.0.1.tar', data: await releaseTar('1.0.1') }]);
    const releases = join(tempDir('releases'), 'releases');
    const v = await stage(file, releases);
    expect(v.artifactName).toBe('fort-1.0.1');
    expect(v.release).toMatchObject({ dir: verifiedReleaseDir(releases, 'd1'), version: '1.0.1', files: 3 });
    expect(left(releases)).toEqual(['.verified-d1']);
    const installed = await commitRelease(v.release.dir, releases, { running: '1.0.0', previous: null });
    expect(installed).toEqual({ dir: join(releases, '1.0.1'), version: '1.0.1' });
    expect(left(releases)).toEqual(['1.0.1']);
    expect(statSync(join(releases, '1.0.1', 'padding.bin')).size).toBe(BIG);
    expect(readFileSync(join(releases, '1.0.1', 'dist/agent/main.js'), 'utf8')).toBe('console.log("agent")');
  });

  it('unpacks a gzipped release tarball too (artifacts of earlier releases)', async () => {
    const file = await artifact('fort-1.0.2', [
      { file: 'fort-agent-1.0.2.tgz', data: gzipSync(await releaseTar('1.0.2')) },
    ]);
    const releases = join(tempDir('releases'), 'releases');
    const v = await stage(file, releases);
    expect(v.release.version).toBe('1.0.2');
    expect(statSync(join(v.release.dir, 'padding.bin')).size).toBe(BIG);
  });

  it('a payload byte changed after signing: refused at the checksum, and nothing it unpacked is left', async () => {
    const good = await artifact('fort-1.0.3', [{ file: 'fort-agent-1.0.3.tar', data: await releaseTar('1.0.3') }]);
    // Inside padding.bin's data, so the tar still parses and the unpack writes it before the end.
    const bad = await rewriteArtifact(good, join(dir, 'tampered.mender'), (entries) =>
      rewritePayload(entries, (files) => files.map((f) => ({ ...f, data: flipByte(f.data, 5000 + BIG / 2) }))),
    );
    const releases = join(tempDir('releases'), 'releases');
    mkdirSync(releases);
    const err = await fortFailure(stage(bad, releases));
    expect(err.code).toBe('FORT_ERR_ARTIFACT');
    expect(err.message).toBe('data/0000/fort-agent-1.0.3.tar: checksum does not match the manifest');
    expect(left(releases)).toEqual([]);
  });

  it('a release tarball that leaves its directory: refused by the unpacker, nothing left', async () => {
    const evil = await releaseTar('1.0.4', [{ name: '../escape.txt', data: Buffer.from('x') }]);
    const file = await artifact('fort-1.0.4', [{ file: 'fort-agent-1.0.4.tar', data: evil }]);
    const releases = join(tempDir('releases'), 'releases');
    const err = await fortFailure(stage(file, releases));
    expect(err.message).toBe('release tarball: path "../escape.txt" leaves the release directory');
    expect(left(releases)).toEqual([]);
    expect(existsSync(join(releases, '..', 'escape.txt'))).toBe(false);
  });

  it('two payload files: refused, and the first one unpacked is removed', async () => {
    const file = await artifact('fort-1.0.5', [
      { file: 'a.tar', data: await releaseTar('1.0.5') },
      { file: 'b.tar', data: await releaseTar('1.0.6') },
    ]);
    const releases = join(tempDir('releases'), 'releases');
    const err = await fortFailure(stage(file, releases));
    expect(err.message).toBe('expected one release tarball in the payload, found more');
    expect(left(releases)).toEqual([]);
  });

  it('an unsigned artifact is refused before any payload byte reaches the disk', async () => {
    const file = await artifact(
      'fort-1.0.7',
      [{ file: 'fort-agent-1.0.7.tar', data: await releaseTar('1.0.7') }],
      false,
    );
    const releases = join(tempDir('releases'), 'releases');
    const err = await fortFailure(stage(file, releases));
    expect(err.message).toMatch(/^artifact is not signed/);
    expect(left(releases)).toEqual([]);
    // The same bytes where unsigned artifacts are allowed: installed.
    expect((await stage(file, releases, true)).release.version).toBe('1.0.7');
  });
});
