import type { Hash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { drained } from '../../lib/streams.js';
import { noop } from './streams.js';

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
 *   resolved; when it rejects, delete the staging directory. See `stageReleaseArtifact`
 *   (release-payload.ts), which unpacks the release into a staging directory this way.
 * A sink's own rejection (disk full, …) is passed through unchanged (not FORT_ERR_ARTIFACT).
 */
export type PayloadSink = (name: string, stream: Readable, size: number) => Promise<void>;

/** Streams one file to the sink while hashing it; the stream ends only if the checksum matches. */
export async function toSink(
  sink: PayloadSink,
  name: string,
  size: number,
  chunks: AsyncIterable<Uint8Array>,
  hash: Hash,
  finish: () => void,
): Promise<void> {
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
