import { constants as cryptoConstants, createHash, verify as verifySignatureBytes, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gunzipSync } from 'node:zlib';
import { extract, type Extract } from 'tar-stream';
import { drained, type DrainableWritable } from '../../lib/streams.js';
import { z } from 'zod';
import { FortError } from '../../lib/errors.js';
import type { ArtifactKeyType, ArtifactPublicKey } from './keys.js';

/**
 * Streaming verifier of Mender artifacts (format v3, what `mender-artifact write module-image`
 * writes): one pass over the outer tar, nothing but the small entries buffered.
 *
 *   version → manifest → [manifest.sig] → header.tar.gz → data/0000.tar.gz
 *
 * Every check is made as its entry arrives: the signature over the manifest before any header
 * is parsed, the header's checksum before its JSON is read, each payload file's checksum at the
 * end of that file. Anything else (another order, other entries, augmented/delta artifacts,
 * state scripts, several payloads, xz/zstd/no compression) is refused.
 */

/**
 * Receives one payload file (`name` is a plain file name, `size` from the tar header).
 *
 * Contract:
 * - Called once per payload file, in artifact order, only after the signature and the header
 *   checks passed and the file was found in the manifest.
 * - Read `stream` to its end (or resolve early: the rest is drained and dropped), then resolve
 *   once the bytes are staged. Settle promptly when `stream` errors.
 * - `stream` ends normally only if the file's SHA-256 matched the manifest; otherwise (and on
 *   truncation or any later failure while it is open) it is destroyed with the refusal, so
 *   `pipeline(stream, createWriteStream(tmp))` rejects instead of completing a bad file.
 * - A file that ended well is still not committed: a later file or the rest of the artifact may
 *   fail. Stage into a temporary directory and commit (rename) only after `verifyArtifact`
 *   resolved; when it rejects, delete the staging directory. See `stagingSink`.
 * A sink's own rejection (disk full, …) is passed through unchanged (not FORT_ERR_ARTIFACT).
 */
export type PayloadSink = (name: string, stream: Readable, size: number) => Promise<void>;

export interface VerifyOptions {
  /** Keys that may have signed the artifact; one verifying is enough. */
  keys: readonly ArtifactPublicKey[];
  /** This device's type: must be one of `artifact_depends.device_type`. */
  deviceType: string;
  /** The payload type (Mender update module name) accepted. Default `fort-agent`. */
  payloadType?: string;
  /** Accept an artifact without `manifest.sig` (a signature present is still verified). */
  allowUnsigned?: boolean;
  /** Bytes of the artifact file; reading stops with a refusal past this. */
  maxBytes: number;
  /** Bytes of the unpacked payload files together. Default 4 × `maxBytes`. */
  maxUnpackedBytes?: number;
  /** Where payload files go; without one they are hashed and dropped (verify only). */
  payloadSink?: PayloadSink;
}

export interface VerifiedPayloadFile {
  name: string;
  size: number;
  sha256: string;
}

export interface VerifiedArtifact {
  artifactName: string;
  deviceTypes: string[];
  payloadType: string;
  files: VerifiedPayloadFile[];
  /** True only when `manifest.sig` was present and verified. */
  signed: boolean;
  keyType?: ArtifactKeyType;
  /** Which configured key verified the signature (its file, as the key was loaded). */
  keySource?: string;
  /** `headers/0000/meta-data`, when the artifact has one. */
  metaData?: Record<string, unknown>;
}

export const DEFAULT_PAYLOAD_TYPE = 'fort-agent';

const LIMITS = {
  version: 4096,
  manifest: 1 << 20,
  signature: 64 << 10,
  header: 1 << 20,
  headerUnpacked: 1 << 20,
};

const DATA_ENTRY = 'data/0000.tar.gz';
const HEADER_ENTRY = 'header.tar.gz';
const TYPE_INFO = 'headers/0000/type-info';
const META_DATA = 'headers/0000/meta-data';

const refuse = (reason: string, cause?: unknown) => new FortError('FORT_ERR_ARTIFACT', reason, cause === undefined ? {} : { cause });
const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));
const noop = () => {};

/** Raw errors of the outer tar parser become refusals; ours pass through. */
function outerFailure(err: unknown): Error {
  if (err instanceof FortError) return err;
  if (messageOf(err) === 'Unexpected end of data') return refuse('artifact is truncated', err);
  return refuse(`artifact is not a valid tar archive (${messageOf(err)})`, err);
}

/** tar-stream's entries are streamx readables of Buffers, typed `unknown`. */
const bytesOf = (source: AsyncIterable<unknown>) => source as AsyncIterable<Uint8Array>;

async function* mapErrors<T>(source: AsyncIterable<T>, map: (err: unknown) => Error): AsyncGenerator<T> {
  try {
    for await (const item of source) yield item;
  } catch (err) {
    throw map(err);
  }
}

interface WritableLike extends DrainableWritable {
  write(chunk: Uint8Array): boolean;
  end(chunk?: undefined): unknown;
  destroy(err?: Error): unknown;
}

/**
 * Copies `source` into `dest` with backpressure, then ends it. Never rejects: a failure of the
 * source destroys `dest` with `mapError(err)`, so errors flow downstream to whoever reads `dest`;
 * a destroyed `dest` stops the copy (and, through the iterator, the source).
 */
async function pump(source: AsyncIterable<Uint8Array>, dest: WritableLike, mapError: (err: unknown) => Error): Promise<void> {
  try {
    for await (const chunk of source) {
      if (dest.destroyed) return;
      if (!dest.write(chunk)) await drained(dest);
    }
    if (!dest.destroyed) dest.end();
  } catch (err) {
    dest.destroy(mapError(err));
  }
}

/**
 * Like `pump`, but gathers the source's small chunks into two reused buffers of `size` bytes:
 * every write to a zlib stream is a thread-pool round trip, so 16 KB pieces cost far more than
 * the inflating, and fresh copies would be garbage for the GC. A buffer is refilled only after
 * zlib's write callback, when it has read all of it.
 */
async function pumpBatched(source: AsyncIterable<Uint8Array>, dest: Writable, size: number, mapError: (err: unknown) => Error): Promise<void> {
  const buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
  let current = 0;
  let filled = 0;
  let inFlight: Promise<void> = Promise.resolve();
  const send = async (bytes: Buffer) => {
    await inFlight; // the other buffer read: the one about to be refilled is free
    inFlight = new Promise((resolve) => {
      const done = () => {
        dest.off('close', done);
        resolve();
      };
      dest.once('close', done);
      dest.write(bytes, done);
    });
  };
  try {
    for await (const chunk of source) {
      if (dest.destroyed) return;
      for (let off = 0; off < chunk.byteLength; ) {
        const n = Math.min(size - filled, chunk.byteLength - off);
        buffers[current]!.set(chunk.subarray(off, off + n), filled);
        filled += n;
        off += n;
        if (filled === size) {
          await send(buffers[current]!);
          current ^= 1;
          filled = 0;
        }
      }
    }
    if (filled > 0) await send(buffers[current]!.subarray(0, filled));
    await inFlight;
    if (!dest.destroyed) dest.end();
  } catch (err) {
    dest.destroy(mapError(err));
  }
}

/** The artifact into the outer tar parser, counting bytes: past `maxBytes` it stops reading. */
function feedOuter(input: Readable, outer: Extract, maxBytes: number): Promise<void> {
  async function* counted(): AsyncGenerator<Uint8Array> {
    let total = 0;
    for await (const chunk of input as AsyncIterable<Uint8Array | string>) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      total += buf.byteLength;
      if (total > maxBytes) throw refuse(`artifact is larger than the limit of ${maxBytes} bytes`);
      yield buf;
    }
  }
  return pump(counted(), outer, (err) => (err instanceof FortError ? err : refuse(`cannot read the artifact: ${messageOf(err)}`, err)));
}

async function readSmall(entry: AsyncIterable<unknown> & { header: { size: number } }, limit: number, name: string): Promise<Buffer> {
  if (entry.header.size > limit) throw refuse(`${name}: entry is larger than ${limit} bytes`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of mapErrors(bytesOf(entry), outerFailure)) {
    size += chunk.byteLength;
    if (size > limit) throw refuse(`${name}: entry is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

// ---------------------------------------------------------------- version, manifest, signature

function checkVersion(raw: Buffer): void {
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch {
    throw refuse('version: not valid JSON');
  }
  const obj = (typeof v === 'object' && v !== null ? v : {}) as { format?: unknown; version?: unknown };
  if (obj.format !== 'mender') throw refuse(`version: unsupported artifact format ${JSON.stringify(obj.format ?? null)} (expected "mender")`);
  if (obj.version !== 3) throw refuse(`version: unsupported artifact format version ${JSON.stringify(obj.version ?? null)} (expected 3)`);
}

interface ManifestLine {
  sha256: string;
  seen: boolean;
}

const MANIFEST_LINE = /^([0-9a-f]{64}) {2}(\S(?:.*\S)?)$/;

function parseManifest(raw: Buffer): Map<string, ManifestLine> {
  const text = raw.toString('utf8');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length === 0) throw refuse('manifest: empty');
  const manifest = new Map<string, ManifestLine>();
  lines.forEach((line, i) => {
    const m = MANIFEST_LINE.exec(line);
    if (!m) throw refuse(`manifest: line ${i + 1} is not "<sha256>  <path>"`);
    const [, hash, path] = m as unknown as [string, string, string];
    if (manifest.has(path)) throw refuse(`manifest: "${path}" is listed twice`);
    manifest.set(path, { sha256: hash, seen: false });
  });
  return manifest;
}

/** Marks `path` seen and compares its checksum; the exact refusals are part of the contract. */
function checkAgainstManifest(manifest: Map<string, ManifestLine>, path: string, hash: string): void {
  const line = manifest.get(path);
  if (!line) throw refuse(`${path}: not listed in the manifest`);
  if (line.seen) throw refuse(`${path}: appears twice in the artifact`);
  line.seen = true;
  if (line.sha256 !== hash) throw refuse(`${path}: checksum does not match the manifest`);
}

function signatureVerifies(key: ArtifactPublicKey, data: Buffer, sig: Buffer): boolean {
  try {
    switch (key.type) {
      case 'rsa':
        return verifySignatureBytes('sha256', data, { key: key.key, padding: cryptoConstants.RSA_PKCS1_PADDING }, sig);
      case 'ecdsa':
        // mender-artifact writes raw r||s (64 bytes); other signers write DER.
        return (
          (sig.length === 64 && verifySignatureBytes('sha256', data, { key: key.key, dsaEncoding: 'ieee-p1363' }, sig)) ||
          verifySignatureBytes('sha256', data, { key: key.key, dsaEncoding: 'der' }, sig)
        );
      case 'ed25519':
        return verifySignatureBytes(null, data, key.key, sig);
    }
  } catch {
    return false;
  }
}

function verifyManifestSignature(manifest: Buffer, sigFile: Buffer, keys: readonly ArtifactPublicKey[]): ArtifactPublicKey {
  if (keys.length === 0) throw refuse('manifest.sig: the artifact is signed but no public key is configured');
  const text = sigFile.toString('latin1').trim();
  if (text === '' || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw refuse('manifest.sig: not valid base64');
  const sig = Buffer.from(text, 'base64');
  const key = keys.find((k) => signatureVerifies(k, manifest, sig));
  if (key) return key;
  throw refuse(
    keys.length === 1
      ? 'manifest.sig: signature does not verify with the configured key'
      : `manifest.sig: signature does not verify with any of the ${keys.length} configured keys`,
  );
}

// ---------------------------------------------------------------- header.tar.gz

const headerInfoSchema = z.looseObject({
  payloads: z.array(z.looseObject({ type: z.string().nullable() })),
  artifact_provides: z.looseObject({ artifact_name: z.string().min(1) }),
  artifact_depends: z.looseObject({ device_type: z.array(z.string().min(1)).min(1) }),
});
const typeInfoSchema = z.looseObject({ type: z.string().nullable() });

interface HeaderFacts {
  artifactName: string;
  deviceTypes: string[];
  payloadType: string;
  metaData?: Record<string, unknown>;
}

/** The entries of a small tar held in memory (header.tar.gz's inner tar). */
async function untarSmall(tarBytes: Buffer, what: string): Promise<Map<string, Buffer>> {
  const ex = extract();
  ex.on('error', noop);
  ex.end(tarBytes);
  const entries = new Map<string, Buffer>();
  try {
    for await (const entry of ex) {
      const { name, type } = entry.header;
      if (type !== 'file') throw refuse(`${what}: "${name}" is not a regular file`);
      if (entries.has(name)) throw refuse(`${what}: "${name}" appears twice`);
      const chunks: Uint8Array[] = [];
      for await (const c of bytesOf(entry)) chunks.push(c);
      entries.set(name, Buffer.concat(chunks));
    }
  } catch (err) {
    if (err instanceof FortError) throw err;
    throw refuse(`${what}: not a valid tar archive (${messageOf(err)})`, err);
  }
  return entries;
}

function parseJson<T>(raw: Buffer, schema: z.ZodType<T>, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw refuse(`${HEADER_ENTRY}: ${what} is not valid JSON`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw refuse(`${HEADER_ENTRY}: ${what}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

async function readHeader(compressed: Buffer, opts: { deviceType: string; payloadType: string }): Promise<HeaderFacts> {
  let tarBytes: Buffer;
  try {
    tarBytes = gunzipSync(compressed, { maxOutputLength: LIMITS.headerUnpacked });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw refuse(`${HEADER_ENTRY}: unpacks to more than ${LIMITS.headerUnpacked} bytes`, err);
    throw refuse(`${HEADER_ENTRY}: gzip: ${messageOf(err)}`, err);
  }
  const entries = await untarSmall(tarBytes, HEADER_ENTRY);
  for (const name of entries.keys()) {
    if (name.startsWith('scripts/')) throw refuse(`${HEADER_ENTRY}: state scripts are not supported ("${name}")`);
    if (name !== 'header-info' && name !== TYPE_INFO && name !== META_DATA) throw refuse(`${HEADER_ENTRY}: unexpected entry "${name}"`);
  }
  const rawInfo = entries.get('header-info');
  if (!rawInfo) throw refuse(`${HEADER_ENTRY}: header-info is missing`);
  const info = parseJson(rawInfo, headerInfoSchema, 'header-info');
  if (info.payloads.length !== 1) throw refuse(`${HEADER_ENTRY}: expected exactly one payload, found ${info.payloads.length}`);
  const deviceTypes = info.artifact_depends.device_type;
  if (!deviceTypes.includes(opts.deviceType)) {
    throw refuse(`${HEADER_ENTRY}: device type ${JSON.stringify(opts.deviceType)} is not in artifact_depends.device_type ${JSON.stringify(deviceTypes)}`);
  }
  const payloadType = info.payloads[0]?.type ?? null;
  if (payloadType !== opts.payloadType) throw refuse(`${HEADER_ENTRY}: payload type ${JSON.stringify(payloadType)} is not ${JSON.stringify(opts.payloadType)}`);
  const rawTypeInfo = entries.get(TYPE_INFO);
  if (!rawTypeInfo) throw refuse(`${HEADER_ENTRY}: ${TYPE_INFO} is missing`);
  const typeInfo = parseJson(rawTypeInfo, typeInfoSchema, TYPE_INFO);
  if (typeInfo.type !== payloadType) {
    throw refuse(`${HEADER_ENTRY}: ${TYPE_INFO} type ${JSON.stringify(typeInfo.type)} does not match header-info payload type ${JSON.stringify(payloadType)}`);
  }
  const rawMeta = entries.get(META_DATA);
  const facts: HeaderFacts = { artifactName: info.artifact_provides.artifact_name, deviceTypes, payloadType };
  if (rawMeta && rawMeta.length > 0) facts.metaData = parseJson(rawMeta, z.record(z.string(), z.unknown()), META_DATA);
  return facts;
}

// ---------------------------------------------------------------- data/0000.tar.gz

const GUNZIP_BATCH_BYTES = 128 * 1024;
const SAFE_NAME = /^[^/\\\u0000-\u001f\u007f]{1,255}$/;

interface PayloadContext {
  manifest: Map<string, ManifestLine>;
  maxUnpackedBytes: number;
  sink?: PayloadSink;
}

/** Streams one file to the sink while hashing it; the stream ends only if the checksum matches. */
async function toSink(sink: PayloadSink, name: string, size: number, chunks: AsyncIterable<Uint8Array>, hash: Hash, finish: () => void): Promise<void> {
  const out = new PassThrough();
  out.on('error', noop); // the sink may not listen; refusals are reported by verifyArtifact
  const failed: { sink?: { err: unknown } } = {};
  const settled = Promise.resolve()
    .then(() => sink(name, out, size))
    .then(
      () => {
        if (!out.readableEnded) out.resume(); // resolved early: drain and drop the rest (wakes the writer)
      },
      (err: unknown) => {
        failed.sink = { err };
        out.destroy(); // wakes the writer ('close')
      },
    );
  const throwIfSinkFailed = () => {
    if (failed.sink) throw failed.sink.err;
  };
  try {
    for await (const chunk of chunks) {
      hash.update(chunk);
      throwIfSinkFailed();
      if (!out.destroyed && !out.write(chunk)) await drained(out);
      throwIfSinkFailed();
    }
    finish(); // throws the refusal when the checksum does not match
  } catch (err) {
    out.destroy(err instanceof Error ? err : new Error(String(err)));
    await settled;
    throw err;
  }
  out.end();
  await settled;
  throwIfSinkFailed();
}

async function readPayload(entry: AsyncIterable<unknown>, ctx: PayloadContext): Promise<VerifiedPayloadFile[]> {
  // Output in large pieces too: each is a thread-pool round trip and a pass through the inner tar.
  const gunzip = createGunzip({ chunkSize: GUNZIP_BATCH_BYTES });
  const inner = extract();
  gunzip.on('error', noop);
  inner.on('error', noop);
  // outer entry → gunzip → inner tar; errors flow downstream and come out of the inner iteration.
  const pumps = Promise.all([
    pumpBatched(mapErrors(bytesOf(entry), outerFailure), gunzip, GUNZIP_BATCH_BYTES, (err) => (err instanceof Error ? err : new Error(String(err)))),
    pump(gunzip as AsyncIterable<Uint8Array>, inner, (err) => (err instanceof FortError ? err : refuse(`${DATA_ENTRY}: gzip: ${messageOf(err)}`, err))),
  ]);
  const innerFailure = (err: unknown): Error => {
    if (err instanceof FortError) return err;
    if (messageOf(err) === 'Unexpected end of data') return refuse(`${DATA_ENTRY}: the payload tar is truncated`, err);
    return refuse(`${DATA_ENTRY}: the payload is not a valid tar archive (${messageOf(err)})`, err);
  };
  const files: VerifiedPayloadFile[] = [];
  let unpacked = 0;
  try {
    for await (const file of mapErrors(inner, innerFailure)) {
      const { name, type, size } = file.header;
      if (type !== 'file') throw refuse(`${DATA_ENTRY}: ${JSON.stringify(name)} is not a regular file`);
      if (!SAFE_NAME.test(name) || name === '.' || name === '..') throw refuse(`${DATA_ENTRY}: unsafe payload file name ${JSON.stringify(name)}`);
      const path = `data/0000/${name}`;
      const line = ctx.manifest.get(path);
      if (!line) throw refuse(`${path}: not listed in the manifest`);
      if (line.seen) throw refuse(`${path}: appears twice in the artifact`);
      const hash = createHash('sha256');
      let count = 0;
      async function* counted(): AsyncGenerator<Uint8Array> {
        for await (const chunk of mapErrors(bytesOf(file), innerFailure)) {
          count += chunk.byteLength;
          unpacked += chunk.byteLength;
          if (unpacked > ctx.maxUnpackedBytes) throw refuse(`${DATA_ENTRY}: the payload unpacks to more than ${ctx.maxUnpackedBytes} bytes`);
          yield chunk;
        }
      }
      let digest = '';
      const finish = () => {
        digest = hash.digest('hex');
        checkAgainstManifest(ctx.manifest, path, digest);
      };
      if (ctx.sink) {
        await toSink(ctx.sink, name, size, counted(), hash, finish);
      } else {
        for await (const chunk of counted()) hash.update(chunk);
        finish();
      }
      files.push({ name, size: count, sha256: digest });
    }
  } finally {
    gunzip.destroy();
    inner.destroy();
  }
  await pumps;
  if (files.length === 0) throw refuse(`${DATA_ENTRY}: the payload has no files`);
  return files;
}

// ---------------------------------------------------------------- the outer tar

const UNSUPPORTED_COMPRESSION = 'unsupported compression xz/zstd (build the artifact with --compression gzip)';

/** header.tar.xz, data/0000.tar.zst, header.tar: the artifact was built with another compression. */
function refuseCompression(name: string, base: string): void {
  if (name === `${base}.tar.xz` || name === `${base}.tar.zst`) throw refuse(`${name}: ${UNSUPPORTED_COMPRESSION}`);
  if (name === `${base}.tar`) throw refuse(`${name}: uncompressed artifacts are not supported (build the artifact with --compression gzip)`);
}

type Stage = 'version' | 'manifest' | 'signature' | 'header' | 'data' | 'done';
const EXPECTED: Record<Stage, string> = {
  version: 'version',
  manifest: 'manifest',
  signature: HEADER_ENTRY,
  header: HEADER_ENTRY,
  data: DATA_ENTRY,
  done: '',
};

/**
 * Verifies a Mender v3 artifact read from `input` (see the module comment for the checks), and
 * streams its payload files to `opts.payloadSink`. Rejects with FORT_ERR_ARTIFACT and an exact
 * reason; `input` is consumed (destroyed when verification stops early).
 */
export async function verifyArtifact(input: Readable, opts: VerifyOptions): Promise<VerifiedArtifact> {
  const outer = extract();
  outer.on('error', noop); // seen through the iteration below
  const feeding = feedOuter(input, outer, opts.maxBytes);
  const payloadType = opts.payloadType ?? DEFAULT_PAYLOAD_TYPE;

  let stage: Stage = 'version';
  let versionHash = '';
  let manifestBytes: Buffer = Buffer.alloc(0);
  let manifest = new Map<string, ManifestLine>();
  let signedBy: ArtifactPublicKey | undefined;
  let header: HeaderFacts | undefined;
  let files: VerifiedPayloadFile[] = [];

  try {
    for await (const entry of mapErrors(outer, outerFailure)) {
      const { name, type } = entry.header;
      if (stage === 'version' && name !== 'version') throw refuse(`not a Mender artifact: the first entry is ${JSON.stringify(name)}, not "version"`);
      if (type !== 'file') throw refuse(`${name}: not a regular file`);
      if (name === 'manifest-augment' || name.startsWith('header-augment')) throw refuse(`${name}: augmented (delta) artifacts are not supported`);

      if (stage === 'version') {
        const raw = await readSmall(entry, LIMITS.version, name);
        checkVersion(raw);
        versionHash = sha256(raw);
        stage = 'manifest';
      } else if (stage === 'manifest') {
        if (name !== 'manifest') throw refuse(`expected "manifest" after "version", found ${JSON.stringify(name)}`);
        manifestBytes = await readSmall(entry, LIMITS.manifest, name);
        manifest = parseManifest(manifestBytes);
        checkAgainstManifest(manifest, 'version', versionHash);
        stage = 'signature';
      } else if (stage === 'signature' && name === 'manifest.sig') {
        const sig = await readSmall(entry, LIMITS.signature, name);
        signedBy = verifyManifestSignature(manifestBytes, sig, opts.keys);
        stage = 'header';
      } else if (stage === 'signature' || stage === 'header') {
        if (stage === 'signature' && !opts.allowUnsigned) throw refuse('artifact is not signed (updates.allow_unsigned is false)');
        refuseCompression(name, 'header');
        if (name !== HEADER_ENTRY) throw refuse(`expected "${HEADER_ENTRY}", found ${JSON.stringify(name)}`);
        const raw = await readSmall(entry, LIMITS.header, name);
        checkAgainstManifest(manifest, HEADER_ENTRY, sha256(raw));
        header = await readHeader(raw, { deviceType: opts.deviceType, payloadType });
        stage = 'data';
      } else if (stage === 'data') {
        refuseCompression(name, 'data/0000');
        if (name !== DATA_ENTRY) throw refuse(`expected "${DATA_ENTRY}", found ${JSON.stringify(name)}`);
        files = await readPayload(entry, { manifest, maxUnpackedBytes: opts.maxUnpackedBytes ?? 4 * opts.maxBytes, sink: opts.payloadSink });
        stage = 'done';
      } else {
        throw refuse(`unexpected entry ${JSON.stringify(name)} after ${DATA_ENTRY}`);
      }
    }
    if (stage !== 'done') throw refuse(`artifact is truncated: no ${JSON.stringify(EXPECTED[stage])} entry`);
    for (const [path, line] of manifest) {
      if (!line.seen) throw refuse(`manifest lists ${JSON.stringify(path)} but the artifact does not contain it`);
    }
  } catch (err) {
    outer.destroy();
    input.destroy(); // stop reading now, even if the source is slow
    await feeding;
    throw err;
  }
  await feeding;
  if (!header) throw refuse(`artifact is truncated: no ${JSON.stringify(HEADER_ENTRY)} entry`);
  return {
    artifactName: header.artifactName,
    deviceTypes: header.deviceTypes,
    payloadType: header.payloadType,
    files,
    signed: signedBy !== undefined,
    ...(signedBy ? { keyType: signedBy.type, keySource: signedBy.source } : {}),
    ...(header.metaData ? { metaData: header.metaData } : {}),
  };
}

/**
 * A payload sink that writes each file into `dir` (an empty directory the caller created, on
 * the same file system as the destination). Commit (rename) only after `verifyArtifact`
 * resolved; on rejection remove `dir`: it may hold files that passed and one cut short.
 */
export function stagingSink(dir: string): PayloadSink {
  return async (name, stream) => {
    await pipeline(stream, createWriteStream(join(dir, name), { flags: 'wx', mode: 0o600 }));
  };
}
