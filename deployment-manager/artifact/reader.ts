import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import type { ArtifactKeyType, ArtifactPublicKey } from './keys.js';
import { HEADER_ENTRY, readHeader, type HeaderFacts } from './header.js';
import { checkAgainstManifest, parseManifest, type Manifest } from './manifest.js';
import { DATA_ENTRY, readPayload, type VerifiedPayloadFile } from './payload.js';
import type { PayloadSink } from './payload-sink.js';
import { refuse } from './refusal.js';
import { verifyManifestSignature } from './signature.js';
import { feedOuter, mapErrors, noop, outerFailure, readSmall } from './streams.js';

/**
 * Streaming verifier of Mender artifacts (format v3, what `mender-artifact write module-image`
 * writes): one pass over the outer tar, nothing but the small entries buffered.
 *
 *   version → manifest → [manifest.sig] → header.tar.gz → data/0000.tar.gz
 *
 * Every check is made as its entry arrives: the signature over the manifest before any header
 * is parsed, the header's checksum before its JSON is read, each payload file's checksum at the
 * end of that file. Anything else (another order, other entries, augmented/delta artifacts,
 * state scripts, several payloads, xz/zstd/no compression) is refused. This file is the order
 * of the entries; each entry's checks are in its own file (manifest, signature, header, payload).
 */

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

/** Bytes of the entries read whole into memory. */
const LIMITS = {
  version: 4096,
  manifest: 1 << 20,
  signature: 64 << 10,
  header: 1 << 20,
};

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

function checkVersion(raw: Buffer): void {
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch {
    throw refuse('version: not valid JSON');
  }
  const obj = (typeof v === 'object' && v !== null ? v : {}) as { format?: unknown; version?: unknown };
  if (obj.format !== 'mender')
    throw refuse(`version: unsupported artifact format ${JSON.stringify(obj.format ?? null)} (expected "mender")`);
  if (obj.version !== 3)
    throw refuse(`version: unsupported artifact format version ${JSON.stringify(obj.version ?? null)} (expected 3)`);
}

const UNSUPPORTED_COMPRESSION = 'unsupported compression xz/zstd (build the artifact with --compression gzip)';

/** header.tar.xz, data/0000.tar.zst, header.tar: the artifact was built with another compression. */
function refuseCompression(name: string, base: string): void {
  if (name === `${base}.tar.xz` || name === `${base}.tar.zst`) throw refuse(`${name}: ${UNSUPPORTED_COMPRESSION}`);
  if (name === `${base}.tar`)
    throw refuse(`${name}: uncompressed artifacts are not supported (build the artifact with --compression gzip)`);
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
  let manifest: Manifest = new Map();
  let signedBy: ArtifactPublicKey | undefined;
  let header: HeaderFacts | undefined;
  let files: VerifiedPayloadFile[] = [];

  try {
    for await (const entry of mapErrors(outer, outerFailure)) {
      const { name, type } = entry.header;
      if (stage === 'version' && name !== 'version')
        throw refuse(`not a Mender artifact: the first entry is ${JSON.stringify(name)}, not "version"`);
      if (type !== 'file') throw refuse(`${name}: not a regular file`);
      if (name === 'manifest-augment' || name.startsWith('header-augment'))
        throw refuse(`${name}: augmented (delta) artifacts are not supported`);

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
        if (stage === 'signature' && !opts.allowUnsigned)
          throw refuse('artifact is not signed (updates.allow_unsigned is false)');
        refuseCompression(name, 'header');
        if (name !== HEADER_ENTRY) throw refuse(`expected "${HEADER_ENTRY}", found ${JSON.stringify(name)}`);
        const raw = await readSmall(entry, LIMITS.header, name);
        checkAgainstManifest(manifest, HEADER_ENTRY, sha256(raw));
        header = await readHeader(raw, { deviceType: opts.deviceType, payloadType });
        stage = 'data';
      } else if (stage === 'data') {
        refuseCompression(name, 'data/0000');
        if (name !== DATA_ENTRY) throw refuse(`expected "${DATA_ENTRY}", found ${JSON.stringify(name)}`);
        files = await readPayload(entry, {
          manifest,
          maxUnpackedBytes: opts.maxUnpackedBytes ?? 4 * opts.maxBytes,
          sink: opts.payloadSink,
        });
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
