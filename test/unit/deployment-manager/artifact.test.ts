import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign as signBytes } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FortError } from '../../../lib/errors.js';
import { verifyArtifactCommand, type CliIo } from '../../../deployment-manager/artifact/cli.js';
import {
  loadPublicKeyFile,
  parsePublicKeys,
  type ArtifactPublicKey,
} from '../../../deployment-manager/artifact/keys.js';
import type { PayloadSink } from '../../../deployment-manager/artifact/payload-sink.js';
import {
  verifyArtifact,
  type VerifiedArtifact,
  type VerifyOptions,
} from '../../../deployment-manager/artifact/reader.js';
import { tempDir } from '../../helpers/fort.js';
import {
  buildArtifact,
  ecKeyPair,
  entry,
  flipByte,
  menderValidate,
  readTar,
  rewriteArtifact,
  rewritePayload,
  rsaKeyPair,
  signArtifact,
  writeBytes,
  type KeyPair,
  type TarEntry,
} from '../../helpers/mender.js';

/** A payload sink that writes each file into `dir` whole, as the contract asks of a sink that stages. */
function stagingSink(dir: string): PayloadSink {
  return async (name, stream) => {
    await pipeline(stream, createWriteStream(join(dir, name), { flags: 'wx', mode: 0o600 }));
  };
}

const MiB = 1024 * 1024;
const PAYLOAD = 'fort-agent-1.2.3.tgz';
const NOTES = 'notes.txt';

let dir: string;
let rsa: KeyPair;
let rsaOther: KeyPair;
let ec: KeyPair;
let rsaKeys: ArtifactPublicKey[];
let ecKeys: ArtifactPublicKey[];
let payload: Buffer;
let unsigned: string;
let rsaSigned: string;
let ecSigned: string;
let n = 0;
const next = (name: string) => join(dir, `${++n}-${name}`);

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(() => {
  dir = tempDir('mender');
  rsa = rsaKeyPair(dir, 'rsa');
  rsaOther = rsaKeyPair(dir, 'rsa-other');
  ec = ecKeyPair(dir, 'ec');
  rsaKeys = loadPublicKeyFile(rsa.public);
  ecKeys = loadPublicKeyFile(ec.public);
  payload = Buffer.alloc(300_000);
  for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE((i * 2654435761) >>> 0, i);
  writeFileSync(join(dir, PAYLOAD), payload);
  writeFileSync(join(dir, NOTES), 'release notes\n');
  unsigned = buildArtifact({ dir, name: 'fort-1.2.3', deviceType: ['dev1', 'dev2'], payloadFile: [PAYLOAD, NOTES] });
  rsaSigned = signArtifact(unsigned, rsa.private, join(dir, 'rsa.mender'));
  ecSigned = signArtifact(unsigned, ec.private, join(dir, 'ec.mender'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function opts(o: Partial<VerifyOptions> = {}): VerifyOptions {
  return { keys: rsaKeys, deviceType: 'dev1', maxBytes: 16 * MiB, ...o };
}

/** A sink that counts bytes and records whether each file's stream ended well or errored. */
function recordingSink() {
  const events: { name: string; outcome: 'complete' | 'error'; bytes: number }[] = [];
  const sink: PayloadSink = async (name, stream) => {
    let bytes = 0;
    const counter = new Writable({
      write(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        cb();
      },
    });
    try {
      await pipeline(stream, counter);
      events.push({ name, outcome: 'complete', bytes });
    } catch (err) {
      events.push({ name, outcome: 'error', bytes });
      throw err;
    }
  };
  return { sink, events };
}

/** The installer's pattern: stage into a temp dir, commit (rename) only after verification resolved. */
async function verifyAndCommit(file: string, o: Partial<VerifyOptions>) {
  const root = tempDir('commit');
  const staging = join(root, 'staging');
  const committed = join(root, 'committed');
  mkdirSync(staging);
  try {
    const result = await verifyArtifact(createReadStream(file), opts({ ...o, payloadSink: stagingSink(staging) }));
    renameSync(staging, committed);
    return { result, committed, root };
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    return { error: err as Error, committed, root };
  }
}

async function expectRefused(file: string, reason: string | RegExp, o: Partial<VerifyOptions> = {}) {
  const rec = recordingSink();
  const err = await verifyArtifact(createReadStream(file), opts({ ...o, payloadSink: rec.sink })).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'verification should fail').toBeInstanceOf(FortError);
  expect((err as FortError).code).toBe('FORT_ERR_ARTIFACT');
  if (typeof reason === 'string') expect((err as FortError).message).toBe(reason);
  else expect((err as FortError).message).toMatch(reason);
  // The installer's pattern never commits a refused artifact.
  const c = await verifyAndCommit(file, o);
  expect(c.error?.message).toBe((err as Error).message);
  expect(existsSync(c.committed)).toBe(false);
  rmSync(c.root, { recursive: true, force: true });
  return rec.events;
}

function expectValid(a: VerifiedArtifact) {
  expect(a).toMatchObject({
    artifactName: 'fort-1.2.3',
    deviceTypes: ['dev1', 'dev2'],
    payloadType: 'fort-agent',
    files: [
      { name: PAYLOAD, size: payload.length, sha256: sha(payload) },
      { name: NOTES, size: 14, sha256: sha(Buffer.from('release notes\n')) },
    ],
  });
}

describe('valid artifacts built by the real mender-artifact', () => {
  it('RSA-signed: verified, payload staged byte for byte, and the reference tool agrees', async () => {
    const c = await verifyAndCommit(rsaSigned, {});
    expect(c.error).toBeUndefined();
    expectValid(c.result!);
    expect(c.result).toMatchObject({ signed: true, keyType: 'rsa', keySource: rsa.public });
    expect(readFileSync(join(c.committed, PAYLOAD)).equals(payload)).toBe(true);
    expect(readdirSync(c.committed).sort()).toEqual([NOTES, PAYLOAD].sort());
    rmSync(c.root, { recursive: true, force: true });
    expect(menderValidate(rsaSigned, rsa.public).ok).toBe(true);
  });

  it('ECDSA P-256: mender-artifact writes raw r||s (64 bytes); verified, reference agrees', async () => {
    const sig = Buffer.from(entry(await readTar(ecSigned), 'manifest.sig').data.toString(), 'base64');
    expect(sig.length).toBe(64);
    const a = await verifyArtifact(createReadStream(ecSigned), opts({ keys: ecKeys }));
    expectValid(a);
    expect(a).toMatchObject({ signed: true, keyType: 'ecdsa' });
    expect(menderValidate(ecSigned, ec.public).ok).toBe(true);
  });

  it('ECDSA with a DER signature (other signers): verified; mender-artifact 3.9 itself refuses DER', async () => {
    const der = await rewriteArtifact(ecSigned, next('der.mender'), (entries) => {
      const manifest = entry(entries, 'manifest').data;
      const sig = signBytes('sha256', manifest, { key: readFileSync(ec.private), dsaEncoding: 'der' });
      expect(sig.length).not.toBe(64);
      return entries.map((e) =>
        e.name === 'manifest.sig' ? { name: e.name, data: Buffer.from(sig.toString('base64')) } : e,
      );
    });
    const a = await verifyArtifact(createReadStream(der), opts({ keys: ecKeys }));
    expect(a).toMatchObject({ signed: true, keyType: 'ecdsa' });
    const ref = menderValidate(der, ec.public);
    expect(ref.ok).toBe(false);
    expect(ref.output).toContain('invalid ecdsa key size');
  });

  it('Ed25519 signature (not producible by mender-artifact): verified', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const keys = parsePublicKeys(publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'ed25519.pub.pem');
    const file = await rewriteArtifact(unsigned, next('ed.mender'), (entries) => {
      const sig = signBytes(null, entry(entries, 'manifest').data, privateKey);
      const i = entries.findIndex((e) => e.name === 'manifest');
      return [
        ...entries.slice(0, i + 1),
        { name: 'manifest.sig', data: Buffer.from(sig.toString('base64')) },
        ...entries.slice(i + 1),
      ];
    });
    expect(await verifyArtifact(createReadStream(file), opts({ keys }))).toMatchObject({
      signed: true,
      keyType: 'ed25519',
      keySource: 'ed25519.pub.pem',
    });
  });

  it('unsigned, with allowUnsigned: verified as unsigned; reference agrees', async () => {
    const a = await verifyArtifact(createReadStream(unsigned), opts({ keys: [], allowUnsigned: true }));
    expectValid(a);
    expect(a.signed).toBe(false);
    expect(a.keyType).toBeUndefined();
    expect(menderValidate(unsigned).ok).toBe(true);
  });

  it('several keys: the one that verifies is reported; a signature present is verified even with allowUnsigned', async () => {
    const keys = [...loadPublicKeyFile(rsaOther.public), ...ecKeys, ...rsaKeys];
    expect(await verifyArtifact(createReadStream(rsaSigned), opts({ keys }))).toMatchObject({
      keyType: 'rsa',
      keySource: rsa.public,
    });
    await expectRefused(rsaSigned, 'manifest.sig: signature does not verify with the configured key', {
      keys: ecKeys,
      allowUnsigned: true,
    });
    await expectRefused(rsaSigned, 'manifest.sig: signature does not verify with any of the 2 configured keys', {
      keys: [...ecKeys, ...loadPublicKeyFile(rsaOther.public)],
    });
    await expectRefused(rsaSigned, 'manifest.sig: the artifact is signed but no public key is configured', {
      keys: [],
      allowUnsigned: true,
    });
  });

  it('without a sink the payload is hashed and dropped; a sink that resolves early gets the rest drained', async () => {
    expectValid(await verifyArtifact(createReadStream(rsaSigned), opts()));
    const seen: string[] = [];
    const lazy: PayloadSink = async (name) => void seen.push(name); // never reads its stream
    expectValid(await verifyArtifact(createReadStream(rsaSigned), opts({ payloadSink: lazy })));
    expect(seen).toEqual([PAYLOAD, NOTES]);
  });

  it('meta-data and a single device type', async () => {
    const meta = join(dir, 'meta.json');
    writeFileSync(meta, JSON.stringify({ channel: 'stable' }));
    const out = next('meta.mender');
    execFileSync(
      '/usr/bin/mender-artifact',
      ['write', 'module-image', '-T', 'fort-agent', '-n', 'm1', '-t', 'dev1', '-f', PAYLOAD, '-m', meta, '-o', out],
      { cwd: dir },
    );
    expect(await verifyArtifact(createReadStream(out), opts({ allowUnsigned: true }))).toMatchObject({
      artifactName: 'm1',
      deviceTypes: ['dev1'],
      metaData: { channel: 'stable' },
      signed: false,
    });
  });
});

describe('refused artifacts, each with its exact reason', () => {
  it('unsigned while signatures are required (reference tool without a key accepts it)', async () => {
    const events = await expectRefused(unsigned, 'artifact is not signed (updates.allow_unsigned is false)');
    expect(events).toEqual([]);
  });

  it('signed with another key (the reference refuses too)', async () => {
    const events = await expectRefused(rsaSigned, 'manifest.sig: signature does not verify with the configured key', {
      keys: loadPublicKeyFile(rsaOther.public),
    });
    expect(events).toEqual([]);
    expect(menderValidate(rsaSigned, rsaOther.public).ok).toBe(false);
    await expectRefused(ecSigned, 'manifest.sig: signature does not verify with the configured key'); // EC signature, RSA key
  });

  it('a manifest byte flipped: the signature fails; unsigned, the checksum of that entry fails', async () => {
    const flip = (file: string, line: string) =>
      rewriteArtifact(file, next('manifest-flip.mender'), (entries) =>
        entries.map((e) => {
          if (e.name !== 'manifest') return e;
          const text = e.data.toString();
          const at = text.indexOf(line) - 64; // first hex digit of that line's checksum
          return {
            name: e.name,
            data: Buffer.from(text.slice(0, at) + (text[at] === '0' ? '1' : '0') + text.slice(at + 1)),
          };
        }),
      );
    const signed = await flip(rsaSigned, '  header.tar.gz');
    expect(await expectRefused(signed, 'manifest.sig: signature does not verify with the configured key')).toEqual([]);
    expect(menderValidate(signed, rsa.public).ok).toBe(false);
    await expectRefused(
      await flip(unsigned, '  header.tar.gz'),
      'header.tar.gz: checksum does not match the manifest',
      { allowUnsigned: true },
    );
    await expectRefused(await flip(unsigned, '  version'), 'version: checksum does not match the manifest', {
      allowUnsigned: true,
    });
    const payloadLine = await flip(unsigned, `  data/0000/${NOTES}`);
    const events = await expectRefused(payloadLine, `data/0000/${NOTES}: checksum does not match the manifest`, {
      allowUnsigned: true,
    });
    expect(events).toEqual([
      { name: PAYLOAD, outcome: 'complete', bytes: payload.length },
      { name: NOTES, outcome: 'error', bytes: expect.any(Number) },
    ]);
  });

  it('a payload byte flipped inside the payload file: its stream errors, never completes (reference refuses too)', async () => {
    const file = await rewriteArtifact(rsaSigned, next('payload-flip.mender'), (entries) =>
      rewritePayload(entries, (files) =>
        files.map((f) => (f.name === PAYLOAD ? { name: f.name, data: flipByte(f.data, 1234) } : f)),
      ),
    );
    const events = await expectRefused(file, `data/0000/${PAYLOAD}: checksum does not match the manifest`);
    expect(events).toEqual([{ name: PAYLOAD, outcome: 'error', bytes: expect.any(Number) }]);
    expect(menderValidate(file, rsa.public).ok).toBe(false);
  });

  it('a byte flipped in the compressed payload: gzip error or checksum error', async () => {
    const at = async (offset: number) =>
      rewriteArtifact(rsaSigned, next('gz-flip.mender'), (entries) =>
        entries.map((e) => (e.name === 'data/0000.tar.gz' ? { name: e.name, data: flipByte(e.data, offset) } : e)),
      );
    await expectRefused(await at(0), 'data/0000.tar.gz: gzip: incorrect header check');
    await expectRefused(await at(-6), 'data/0000.tar.gz: gzip: incorrect data check'); // CRC32 of the trailer
    await expectRefused(
      await at(5000),
      /^(data\/0000\/fort-agent-1\.2\.3\.tgz: checksum does not match the manifest|data\/0000\.tar\.gz: (gzip|the payload)\b.*)$/,
    );
  });

  it('payload files not in the manifest, or manifest lines never seen', async () => {
    const extra = await rewriteArtifact(unsigned, next('extra-file.mender'), (entries) =>
      rewritePayload(entries, (files) => [...files, { name: 'evil.sh', data: Buffer.from('#!/bin/sh\n') }]),
    );
    await expectRefused(extra, 'data/0000/evil.sh: not listed in the manifest', { allowUnsigned: true });
    const missing = await rewriteArtifact(unsigned, next('missing-file.mender'), (entries) =>
      rewritePayload(entries, (files) => files.filter((f) => f.name !== NOTES)),
    );
    await expectRefused(missing, `manifest lists "data/0000/${NOTES}" but the artifact does not contain it`, {
      allowUnsigned: true,
    });
    const traversal = await rewriteArtifact(unsigned, next('traversal.mender'), (entries) =>
      rewritePayload(entries, (files) =>
        files.map((f) => (f.name === NOTES ? { name: `../${NOTES}`, data: f.data } : f)),
      ),
    );
    await expectRefused(traversal, `data/0000.tar.gz: unsafe payload file name "../${NOTES}"`, { allowUnsigned: true });
  });

  it('wrong device type', async () => {
    expect(
      await expectRefused(
        rsaSigned,
        'header.tar.gz: device type "dev3" is not in artifact_depends.device_type ["dev1","dev2"]',
        { deviceType: 'dev3' },
      ),
    ).toEqual([]);
  });

  it('wrong payload type', async () => {
    const other = buildArtifact({
      dir,
      name: 'other-1',
      deviceType: 'dev1',
      payloadFile: PAYLOAD,
      payloadType: 'rootfs-tarball',
      sign: { key: rsa.private },
      out: next('type.mender'),
    });
    expect(await expectRefused(other, 'header.tar.gz: payload type "rootfs-tarball" is not "fort-agent"')).toEqual([]);
    expect(await verifyArtifact(createReadStream(other), opts({ payloadType: 'rootfs-tarball' }))).toMatchObject({
      payloadType: 'rootfs-tarball',
    });
  });

  it('xz (the tool has lzma, no zstd), zstd and no compression', async () => {
    const xz = buildArtifact({
      dir,
      name: 'xz-1',
      deviceType: 'dev1',
      payloadFile: PAYLOAD,
      compression: 'lzma',
      sign: { key: rsa.private },
      out: next('xz.mender'),
    });
    expect((await readTar(xz)).map((e) => e.name)).toEqual([
      'version',
      'manifest',
      'manifest.sig',
      'header.tar.xz',
      'data/0000.tar.xz',
    ]);
    await expectRefused(
      xz,
      'header.tar.xz: unsupported compression xz/zstd (build the artifact with --compression gzip)',
    );
    const zst = await rewriteArtifact(unsigned, next('zst.mender'), (entries) =>
      entries.map((e) => (e.name === 'data/0000.tar.gz' ? { name: 'data/0000.tar.zst', data: e.data } : e)),
    );
    await expectRefused(
      zst,
      'data/0000.tar.zst: unsupported compression xz/zstd (build the artifact with --compression gzip)',
      { allowUnsigned: true },
    );
    const none = buildArtifact({
      dir,
      name: 'none-1',
      deviceType: 'dev1',
      payloadFile: PAYLOAD,
      compression: 'none',
      out: next('none.mender'),
    });
    await expectRefused(
      none,
      'header.tar: uncompressed artifacts are not supported (build the artifact with --compression gzip)',
      { allowUnsigned: true },
    );
  });

  it('truncated at many offsets (a cut file never ends cleanly in the sink; nothing is committed)', async () => {
    const whole = readFileSync(rsaSigned);
    const offsets = [
      0,
      1,
      100,
      511,
      512,
      700,
      1024,
      1100,
      1600,
      2048,
      2600,
      3100,
      4000,
      20_000,
      Math.floor(whole.length / 2),
      whole.length - 2000,
      whole.length - 1025,
    ];
    for (const cut of offsets) {
      const file = writeBytes(next(`cut-${cut}.mender`), whole.subarray(0, cut));
      const events = await expectRefused(
        file,
        /^artifact is truncated(: no "(version|manifest|header\.tar\.gz|data\/0000\.tar\.gz)" entry)?$/,
      );
      // A file that ended before the cut may complete (its checksum matched): staged, never committed.
      const full: Record<string, number> = { [PAYLOAD]: payload.length, [NOTES]: 14 };
      for (const e of events)
        if (e.outcome === 'complete') expect(e.bytes, `cut at ${cut}: ${e.name}`).toBe(full[e.name]);
      // The reference stops after the last entry's content: it accepts a cut inside the final padding.
      if (cut < whole.length - 1536)
        expect(menderValidate(file, rsa.public).ok, `reference on cut at ${cut}`).toBe(false);
    }
    // Only the end-of-archive marker missing: every entry was read and checked; the reference accepts it as well.
    const noTrailer = writeBytes(next('no-trailer.mender'), whole.subarray(0, whole.length - 1024));
    expect(menderValidate(noTrailer, rsa.public).ok).toBe(true);
    expectValid(await verifyArtifact(createReadStream(noTrailer), opts()));
  });

  it('larger than the cap: refused, and reading stops there', async () => {
    const size = statSync(rsaSigned).size;
    let read = 0;
    const counting = createReadStream(rsaSigned, { highWaterMark: 16 * 1024 }).on('data', (c) => (read += c.length));
    const err = await verifyArtifact(counting, opts({ maxBytes: 50_000 })).catch((e: unknown) => e);
    expect((err as Error).message).toBe('artifact is larger than the limit of 50000 bytes');
    expect(read).toBeLessThan(50_000 + 64 * 1024);
    expect(read).toBeLessThan(size);
    await expectRefused(rsaSigned, `artifact is larger than the limit of ${size - 1} bytes`, { maxBytes: size - 1 });
    expect(await verifyArtifact(createReadStream(rsaSigned), opts({ maxBytes: size }))).toMatchObject({ signed: true });
    await expectRefused(rsaSigned, 'data/0000.tar.gz: the payload unpacks to more than 100000 bytes', {
      maxUnpackedBytes: 100_000,
    });
  });

  it('a version entry of another format or version', async () => {
    const withVersion = (v: string) =>
      rewriteArtifact(unsigned, next('version.mender'), (entries) =>
        entries.map((e) => (e.name === 'version' ? { name: 'version', data: Buffer.from(v) } : e)),
      );
    await expectRefused(
      await withVersion('{"format":"mender","version":2}'),
      'version: unsupported artifact format version 2 (expected 3)',
      { allowUnsigned: true },
    );
    await expectRefused(
      await withVersion('{"format":"swupdate","version":3}'),
      'version: unsupported artifact format "swupdate" (expected "mender")',
      { allowUnsigned: true },
    );
    await expectRefused(await withVersion('not json'), 'version: not valid JSON', { allowUnsigned: true });
  });

  it('not an artifact, wrong order, extra entries, augmented artifacts', async () => {
    await expectRefused(
      writeBytes(next('random.mender'), Buffer.alloc(4096, 7)),
      /^artifact is not a valid tar archive \(/,
    );
    const edited = (name: string, edit: (entries: TarEntry[]) => TarEntry[]) =>
      rewriteArtifact(unsigned, next(name), edit);
    await expectRefused(
      await edited('no-version.mender', (e) => e.slice(1)),
      'not a Mender artifact: the first entry is "manifest", not "version"',
    );
    await expectRefused(
      await edited('swapped.mender', (e) => [e[0]!, e[2]!, e[1]!, ...e.slice(3)]),
      'expected "manifest" after "version", found "header.tar.gz"',
      { allowUnsigned: true },
    );
    await expectRefused(
      await edited('trailing.mender', (e) => [...e, { name: 'data/0001.tar.gz', data: Buffer.alloc(10) }]),
      'unexpected entry "data/0001.tar.gz" after data/0000.tar.gz',
      {
        allowUnsigned: true,
      },
    );
    await expectRefused(
      await edited('augment.mender', (e) => [
        e[0]!,
        e[1]!,
        { name: 'manifest-augment', data: Buffer.from('') },
        ...e.slice(2),
      ]),
      'manifest-augment: augmented (delta) artifacts are not supported',
      { allowUnsigned: true },
    );
    await expectRefused(
      await edited('no-data.mender', (e) => e.filter((x) => x.name !== 'data/0000.tar.gz')),
      'artifact is truncated: no "data/0000.tar.gz" entry',
      {
        allowUnsigned: true,
      },
    );
    await expectRefused(
      await edited('bad-sig.mender', (e) => [
        e[0]!,
        e[1]!,
        { name: 'manifest.sig', data: Buffer.from('***') },
        ...e.slice(2),
      ]),
      'manifest.sig: not valid base64',
    );
  });

  it("a sink's own failure is passed through unchanged", async () => {
    const diskFull: PayloadSink = async (_name, stream) => {
      stream.resume();
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    };
    const err = await verifyArtifact(createReadStream(rsaSigned), opts({ payloadSink: diskFull })).catch(
      (e: unknown) => e,
    );
    expect(err).not.toBeInstanceOf(FortError);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
  });
});

describe('keys', () => {
  it('accepts SPKI and PKCS#1 "RSA PUBLIC KEY" PEM, several blocks; refuses private keys, weak RSA, other curves, garbage', async () => {
    const pkcs1 = execFileSync('openssl', ['rsa', '-in', rsa.private, '-RSAPublicKey_out'], {
      stdio: 'pipe',
    }).toString();
    expect(pkcs1).toContain('BEGIN RSA PUBLIC KEY');
    const [k] = parsePublicKeys(pkcs1, 'pkcs1.pem');
    expect(k?.type).toBe('rsa');
    expect((await verifyArtifact(createReadStream(rsaSigned), opts({ keys: [k!] }))).signed).toBe(true);
    const two = parsePublicKeys(readFileSync(rsa.public, 'utf8') + readFileSync(ec.public, 'utf8'), 'both.pem');
    expect(two.map((x) => [x.type, x.source])).toEqual([
      ['rsa', 'both.pem (block 1)'],
      ['ecdsa', 'both.pem (block 2)'],
    ]);
    expect(() => loadPublicKeyFile(rsa.private)).toThrow(
      `${rsa.private}: is a private key (RSA PRIVATE KEY); give the public key (openssl pkey -in KEY -pubout)`,
    );
    const weak = rsaKeyPair(dir, 'weak', 1024);
    expect(() => loadPublicKeyFile(weak.public)).toThrow(
      `${weak.public}: RSA key of 1024 bits is too weak (at least 2048)`,
    );
    const p384 = ecKeyPair(dir, 'p384', 'secp384r1');
    expect(() => loadPublicKeyFile(p384.public)).toThrow(
      `${p384.public}: EC key on curve secp384r1 is not supported (only P-256 / prime256v1)`,
    );
    expect(() => parsePublicKeys('hello', 'x.pem')).toThrow(
      'x.pem: no PEM block found (expected "-----BEGIN PUBLIC KEY-----")',
    );
    expect(() => loadPublicKeyFile(join(dir, 'nope.pem'))).toThrow(
      `${join(dir, 'nope.pem')}: cannot read the key file: ENOENT`,
    );
  });
});

describe('verify-artifact command', () => {
  async function run(...args: string[]) {
    const out = { stdout: '', stderr: '', code: -1 };
    const io: CliIo = {
      stdout: (t) => void (out.stdout += t),
      stderr: (t) => void (out.stderr += t),
      exitCode: (c) => void (out.code = c),
    };
    const program = new Command('fort-deployment-manager')
      .exitOverride()
      .configureOutput({ writeErr: (t) => void (out.stderr += t), writeOut: (t) => void (out.stdout += t) });
    verifyArtifactCommand(program, io);
    try {
      await program.parseAsync(['verify-artifact', ...args], { from: 'user' });
    } catch (err) {
      out.code = (err as { exitCode?: number }).exitCode ?? 99;
    }
    return out;
  }

  it('valid: exit 0 and a summary; --json', async () => {
    const ok = await run(ecSigned, '--key', ec.public, '--device-type', 'dev2');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`${ecSigned}: valid`);
    expect(ok.stdout).toContain('artifact      fort-1.2.3');
    expect(ok.stdout).toContain('device types  dev1, dev2');
    expect(ok.stdout).toMatch(
      new RegExp(`${PAYLOAD.replace(/\./g, '\\.')}\\s+${payload.length} bytes  sha256 ${sha(payload)}`),
    );
    expect(ok.stdout).toContain(`signature     ecdsa signature verified with ${ec.public}`);
    const json = await run(unsigned, '--allow-unsigned', '--device-type', 'dev1', '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      file: unsigned,
      valid: true,
      signed: false,
      artifactName: 'fort-1.2.3',
    });
  });

  it('refused: exit 1 with "verify-artifact: <file>: <reason>"; cannot check: exit 2', async () => {
    const bad = await run(rsaSigned, '--key', rsa.public, '--device-type', 'dev9');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(
      `verify-artifact: ${rsaSigned}: header.tar.gz: device type "dev9" is not in artifact_depends.device_type ["dev1","dev2"]\n`,
    );
    const cap = await run(rsaSigned, '--key', rsa.public, '--device-type', 'dev1', '--max-mb', '1');
    expect(cap).toMatchObject({ code: 0 });
    const unsignedRefused = await run(unsigned, '--key', rsa.public, '--device-type', 'dev1', '--json');
    expect(unsignedRefused.code).toBe(1);
    expect(JSON.parse(unsignedRefused.stdout)).toEqual({
      file: unsigned,
      valid: false,
      checked: true,
      reason: 'artifact is not signed (updates.allow_unsigned is false)',
    });
    expect((await run(rsaSigned, '--key', rsa.private, '--device-type', 'dev1')).code).toBe(2);
    expect((await run(rsaSigned, '--device-type', 'dev1')).stderr).toBe(
      `verify-artifact: ${rsaSigned}: no --key given (give the signing public key, or --allow-unsigned)\n`,
    );
    const missing = await run(join(dir, 'nope.mender'), '--key', rsa.public, '--device-type', 'dev1');
    expect(missing).toMatchObject({
      code: 2,
      stderr: `verify-artifact: ${join(dir, 'nope.mender')}: cannot read: ENOENT\n`,
    });
    expect((await run(rsaSigned, '--key', rsa.public)).code).toBe(1); // commander: missing --device-type
  });
});

describe('streaming', () => {
  it('a 50 MB payload is verified and staged with bounded memory', async () => {
    const big = join(dir, 'big.bin');
    const size = 50 * MiB;
    // Written by another process, so this one's memory is not warmed up by the payload.
    execFileSync('openssl', ['rand', '-out', big, String(size)]);
    const file = buildArtifact({
      dir,
      name: 'big-1',
      deviceType: 'dev1',
      payloadFile: 'big.bin',
      sign: { key: rsa.private },
      out: next('big.mender'),
    });
    expect(statSync(file).size).toBeGreaterThan(size);

    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    let staged = 0;
    const sink: PayloadSink = async (_name, stream) => {
      const counter = new Writable({
        highWaterMark: 64 * 1024,
        write(chunk: Buffer, _enc, cb) {
          staged += chunk.length;
          setImmediate(cb); // a consumer slower than the reader: backpressure must hold
        },
      });
      await pipeline(stream, counter);
    };
    try {
      const a = await verifyArtifact(createReadStream(file), opts({ maxBytes: 64 * MiB, payloadSink: sink }));
      expect(a.files).toEqual([{ name: 'big.bin', size, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
    } finally {
      clearInterval(timer);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(staged).toBe(size);
    expect((peak - before) / MiB, 'rss growth in MiB').toBeLessThan(40);
    rmSync(big);
  });
});
