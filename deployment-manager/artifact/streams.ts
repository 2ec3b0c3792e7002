import type { Readable, Writable } from 'node:stream';
import type { Extract } from 'tar-stream';
import { FortError } from '../../lib/errors.js';
import { drained, type DrainableWritable } from '../../lib/streams.js';
import { messageOf, refuse } from './refusal.js';

/** Stream plumbing of the artifact reader: the outer tar fed and read, entries piped with backpressure. */

export const noop = () => {};

/** Raw errors of the outer tar parser become refusals; ours pass through. */
export function outerFailure(err: unknown): Error {
  if (err instanceof FortError) return err;
  if (messageOf(err) === 'Unexpected end of data') return refuse('artifact is truncated', err);
  return refuse(`artifact is not a valid tar archive (${messageOf(err)})`, err);
}

/** tar-stream's entries are streamx readables of Buffers, typed `unknown`. */
export const bytesOf = (source: AsyncIterable<unknown>) => source as AsyncIterable<Uint8Array>;

export async function* mapErrors<T>(source: AsyncIterable<T>, map: (err: unknown) => Error): AsyncGenerator<T> {
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
export async function pump(
  source: AsyncIterable<Uint8Array>,
  dest: WritableLike,
  mapError: (err: unknown) => Error,
): Promise<void> {
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
export async function pumpBatched(
  source: AsyncIterable<Uint8Array>,
  dest: Writable,
  size: number,
  mapError: (err: unknown) => Error,
): Promise<void> {
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
      for (let off = 0; off < chunk.byteLength;) {
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
export function feedOuter(input: Readable, outer: Extract, maxBytes: number): Promise<void> {
  async function* counted(): AsyncGenerator<Uint8Array> {
    let total = 0;
    for await (const chunk of input as AsyncIterable<Uint8Array | string>) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      total += buf.byteLength;
      if (total > maxBytes) throw refuse(`artifact is larger than the limit of ${maxBytes} bytes`);
      yield buf;
    }
  }
  return pump(counted(), outer, (err) =>
    err instanceof FortError ? err : refuse(`cannot read the artifact: ${messageOf(err)}`, err),
  );
}

/** A small outer entry (version, manifest, signature, header) whole in memory, refused past `limit`. */
export async function readSmall(
  entry: AsyncIterable<unknown> & { header: { size: number } },
  limit: number,
  name: string,
): Promise<Buffer> {
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
