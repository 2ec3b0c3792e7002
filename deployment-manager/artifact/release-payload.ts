import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { FortError } from '../../lib/errors.js';
import type { ArtifactPublicKey } from './keys.js';
import { stagingSink } from './payload-sink.js';
import { verifyArtifact } from './reader.js';

export interface ReleaseArtifactOptions {
  keys: ArtifactPublicKey[];
  deviceType: string;
  allowUnsigned: boolean;
  maxBytes: number;
}

/**
 * Verifies a release artifact and stages its one payload file (the release tarball) in `dir`:
 * written to `<dir>.partial` and renamed, so `dir` only ever holds a verified payload. The
 * deployment manager stages what it downloads this way, and root what it installs of it.
 */
export async function stageReleasePayload(
  input: Readable,
  opts: ReleaseArtifactOptions,
  dir: string,
): Promise<{ artifactName: string; payload: string }> {
  const tmp = `${dir}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  try {
    const v = await verifyArtifact(input, { ...opts, payloadSink: stagingSink(tmp) });
    if (v.files.length !== 1)
      throw new FortError('FORT_ERR_ARTIFACT', `expected one release tarball in the payload, found ${v.files.length}`, {
        fatal: false,
      });
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    return { artifactName: v.artifactName, payload: join(dir, v.files[0]!.name) };
  } catch (err) {
    input.destroy();
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
