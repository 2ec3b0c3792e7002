import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';
import { FortError } from '../../lib/errors.js';
import { checkAgainstManifest, type Manifest } from './manifest.js';
import { toSink, type PayloadSink } from './payload-sink.js';
import { messageOf, refuse } from './refusal.js';
import { bytesOf, mapErrors, noop, outerFailure, pump, pumpBatched } from './streams.js';

/** data/0000.tar.gz: the payload files, each checked against the manifest at its end. */

export const DATA_ENTRY = 'data/0000.tar.gz';
const GUNZIP_BATCH_BYTES = 128 * 1024;
// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const SAFE_NAME = /^[^/\\\u0000-\u001f\u007f]{1,255}$/;

export interface VerifiedPayloadFile {
  name: string;
  size: number;
  sha256: string;
}

interface PayloadContext {
  manifest: Manifest;
  maxUnpackedBytes: number;
  sink?: PayloadSink;
}

const innerFailure = (err: unknown): Error => {
  if (err instanceof FortError) return err;
  if (messageOf(err) === 'Unexpected end of data') return refuse(`${DATA_ENTRY}: the payload tar is truncated`, err);
  return refuse(`${DATA_ENTRY}: the payload is not a valid tar archive (${messageOf(err)})`, err);
};

export async function readPayload(entry: AsyncIterable<unknown>, ctx: PayloadContext): Promise<VerifiedPayloadFile[]> {
  // Output in large pieces too: each is a thread-pool round trip and a pass through the inner tar.
  const gunzip = createGunzip({ chunkSize: GUNZIP_BATCH_BYTES });
  const inner = extract();
  gunzip.on('error', noop);
  inner.on('error', noop);
  // outer entry → gunzip → inner tar; errors flow downstream and come out of the inner iteration.
  const pumps = Promise.all([
    pumpBatched(mapErrors(bytesOf(entry), outerFailure), gunzip, GUNZIP_BATCH_BYTES, (err) =>
      err instanceof Error ? err : new Error(String(err)),
    ),
    pump(gunzip as AsyncIterable<Uint8Array>, inner, (err) =>
      err instanceof FortError ? err : refuse(`${DATA_ENTRY}: gzip: ${messageOf(err)}`, err),
    ),
  ]);
  const files: VerifiedPayloadFile[] = [];
  let unpacked = 0;
  try {
    for await (const file of mapErrors(inner, innerFailure)) {
      const { name, type, size } = file.header;
      if (type !== 'file') throw refuse(`${DATA_ENTRY}: ${JSON.stringify(name)} is not a regular file`);
      if (!SAFE_NAME.test(name) || name === '.' || name === '..')
        throw refuse(`${DATA_ENTRY}: unsafe payload file name ${JSON.stringify(name)}`);
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
          if (unpacked > ctx.maxUnpackedBytes)
            throw refuse(`${DATA_ENTRY}: the payload unpacks to more than ${ctx.maxUnpackedBytes} bytes`);
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
