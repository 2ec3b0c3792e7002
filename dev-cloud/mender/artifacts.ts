import { createHash, randomUUID } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
} from 'node:fs';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../lib/logger.js';
import { ArtifactFormatError, readArtifactInfo, type ArtifactInfo } from './artifact-info.js';
import { MenderOpError } from './errors.js';

/** An uploaded artifact, stored as `<artifacts_dir>/<id>.mender`. */
export interface ArtifactRecord extends ArtifactInfo {
  id: string;
  size: number;
  /** SHA-256 of the whole file, hex (also the download's ETag). */
  sha256: string;
  uploadedAt: string;
  file: string;
}

export interface ArtifactStore {
  /** Stores an artifact from a stream (an upload); 400 for a file that is no v3 artifact, 409 for a name + device type already there. */
  add(body: Readable): Promise<ArtifactRecord>;
  list(): ArtifactRecord[];
  get(id: string): ArtifactRecord | undefined;
  /** The artifact named `name` that a device of `deviceType` can install. */
  findFor(name: string, deviceType: string): ArtifactRecord | undefined;
  byName(name: string): ArtifactRecord[];
}

const ID = /^([0-9a-f-]{36})\.mender$/;

/** Artifacts in a directory; the files there at start are indexed again (they survive restarts). */
export async function openArtifactStore(deps: { dir: string; now: () => Date; log: Logger }): Promise<ArtifactStore> {
  mkdirSync(deps.dir, { recursive: true });
  const records = new Map<string, ArtifactRecord>();

  async function describe(id: string, file: string, sha256: string, uploadedAt: string): Promise<ArtifactRecord> {
    const info = await readArtifactInfo(file);
    return { id, ...info, size: statSync(file).size, sha256, uploadedAt, file };
  }

  for (const f of readdirSync(deps.dir)) {
    const id = ID.exec(f)?.[1];
    if (!id) continue;
    const file = join(deps.dir, f);
    try {
      const hash = createHash('sha256');
      await pipeline(createReadStream(file), hash);
      records.set(id, await describe(id, file, hash.digest('hex'), statSync(file).mtime.toISOString()));
    } catch (err) {
      deps.log.warn({ file, err: (err as Error).message }, 'not a Mender artifact; ignored');
    }
  }

  const overlapping = (a: ArtifactInfo) =>
    [...records.values()].find((r) => r.name === a.name && r.deviceTypes.some((t) => a.deviceTypes.includes(t)));

  return {
    async add(body) {
      const id = randomUUID();
      const tmp = join(deps.dir, `.upload-${id}`);
      const hash = createHash('sha256');
      const tee = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      try {
        await pipeline(body, tee, createWriteStream(tmp, { mode: 0o600 }));
        const record = await describe(id, tmp, hash.digest('hex'), deps.now().toISOString()).catch((err: unknown) => {
          if (err instanceof ArtifactFormatError) throw new MenderOpError('bad_request', err.message);
          throw err;
        });
        const clash = overlapping(record);
        if (clash)
          throw new MenderOpError(
            'conflict',
            `artifact ${record.name} for ${clash.deviceTypes.join(', ')} already exists (${clash.id})`,
          );
        const file = join(deps.dir, `${id}.mender`);
        // The file's mtime is its upload time when the directory is indexed again.
        utimesSync(tmp, new Date(record.uploadedAt), new Date(record.uploadedAt));
        renameSync(tmp, file);
        const stored = { ...record, file };
        records.set(id, stored);
        return stored;
      } finally {
        rmSync(tmp, { force: true });
      }
    },
    list: () => [...records.values()].sort((a, b) => a.uploadedAt.localeCompare(b.uploadedAt)),
    get: (id) => records.get(id),
    findFor: (name, deviceType) =>
      [...records.values()].find((r) => r.name === name && r.deviceTypes.includes(deviceType)),
    byName: (name) => [...records.values()].filter((r) => r.name === name),
  };
}
