import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { FortError } from '../../lib/errors.js';
import { releaseUnpackLimits, renameStaged, unpackToStaging, type StagedRelease } from '../install/unpack.js';
import type { ArtifactPublicKey } from './keys.js';
import type { PayloadSink } from './payload-sink.js';
import { verifyArtifact } from './reader.js';

export interface ReleaseArtifactOptions {
  keys: ArtifactPublicKey[];
  deviceType: string;
  allowUnsigned: boolean;
  maxBytes: number;
}

const refuse = (why: string) => new FortError('FORT_ERR_ARTIFACT', why, { fatal: false });

/**
 * Verifies a release artifact and unpacks its one payload file (the release tarball) as it
 * streams: one pass over the bytes, no tarball written to disk and read back. The signature and
 * header are checked before any payload byte is read; the payload's bytes reach only a staging
 * directory of `releasesDir` until its checksum (and the rest of the artifact) verified, and that
 * directory is removed when anything fails. Once verified it is renamed `verifiedDir` (a
 * dot-name in `releasesDir`), which `commitRelease` later installs under its version. The
 * deployment manager stages what it downloads this way, and root what it installs of it.
 */
export async function stageReleaseArtifact(
  input: Readable,
  opts: ReleaseArtifactOptions,
  releasesDir: string,
  verifiedDir: string,
): Promise<{ artifactName: string; release: StagedRelease }> {
  let staged: StagedRelease | undefined;
  let payloads = 0;
  const sink: PayloadSink = async (_name, stream) => {
    if (++payloads > 1) throw refuse('expected one release tarball in the payload, found more');
    staged = await unpackToStaging(stream, releasesDir, releaseUnpackLimits(opts.maxBytes));
  };
  try {
    const v = await verifyArtifact(input, { ...opts, payloadSink: sink });
    if (v.files.length !== 1 || !staged)
      throw refuse(`expected one release tarball in the payload, found ${v.files.length}`);
    return { artifactName: v.artifactName, release: await renameStaged(staged, verifiedDir) };
  } catch (err) {
    input.destroy();
    if (staged) await rm(staged.dir, { recursive: true, force: true });
    throw err;
  }
}
