import { createReadStream, existsSync, fsync, openSync, closeSync, statSync, statfsSync, writev } from 'node:fs';
import { promisify } from 'node:util';
import { request, type Agent } from 'node:https';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDiskFull } from '../../lib/disk-full.js';
import { FortError } from '../../lib/errors.js';
import { drained } from '../../lib/streams.js';
import { writebackKicker } from '../../lib/writeback.js';
import type { Logger } from '../../lib/logger.js';
import { RETRY_AFTER_MAX_MS, clampRetryAfter, describeWait, retryAfterFrom } from '../../lib/retry-after.js';

export interface DownloadOptions {
  url: URL;
  /** Device cert + server CA; the download link itself carries no JWT. */
  agent: Agent;
  /** Staging file; a partial one from an earlier attempt (or run) is resumed with a Range request. */
  dest: string;
  maxBytes: number;
  /** Free space to leave on the staging file system, besides the artifact itself. */
  reserveBytes: number;
  /** No byte for this long → the connection is dropped and the download resumed. */
  stallTimeoutMs: number;
  /**
   * Further requests before giving up: resumptions after dropped or stalled connections, and
   * tries again after a 429 or 503 with `Retry-After` (a 429 or 503 without one ends the download).
   */
  attempts: number;
  /**
   * Longest wait for a server's `Retry-After` (default and at most 1 h; at least 1 s is always
   * waited): a longer one is waited this long. The wait ends at once when `signal` aborts.
   */
  maxRetryAfterMs?: number;
  signal?: AbortSignal;
  /**
   * Gets every byte of the artifact once, in order, from byte 0 (what an earlier attempt left on
   * disk first), and is ended when the download is complete: a verifier reading while the bytes
   * arrive saves a second pass over the file. Destroyed when it cannot get them all in order.
   */
  tap?: Writable;
  /** Called with the bytes on disk after each fsync'ed chunk, so the caller can persist the offset. */
  onProgress?: (bytes: number) => void;
  log: Logger;
}

/** Bytes gathered before one writev(2) (see downloadOnce). */
const WRITE_BATCH_BYTES = 1024 * 1024;
/** Bytes handed to the disk and not yet written before the download pauses. */
const WRITES_IN_FLIGHT_BYTES = 2 * 1024 * 1024;
/** …or after this long, whatever was gathered. */
const FLUSH_AFTER_MS = 100;

const fail = (message: string, cause?: unknown) =>
  new FortError('FORT_ERR_UPDATE_SERVER', `artifact download: ${message}`, { fatal: false, cause });
/** No room for the artifact: the deployment waits for space (steps.ts) rather than failing. */
const diskLow = (message: string, cause?: unknown) =>
  new FortError('FORT_ERR_DISK_LOW', `artifact download: ${message}`, { fatal: false, cause });

/** A dropped or stalled connection: a resumed request may get past it. */
class Interrupted extends FortError {
  constructor(what: 'connection dropped' | 'stalled', cause?: unknown) {
    super('FORT_ERR_UPDATE_SERVER', `artifact download: ${what}`, { fatal: false, cause });
  }
}

/** A 429 or 503 that says when to come back (`retryAfterMs`, clamped to 1 s .. 1 h). */
class Throttled extends FortError {
  declare readonly retryAfterMs: number;
  constructor(status: number, retryAfterMs: number) {
    super(
      'FORT_ERR_UPDATE_SERVER',
      `artifact download: server answered ${status} (retry after ${describeWait(retryAfterMs)})`,
      { fatal: false, retryAfterMs },
    );
  }
}

/**
 * Streams an artifact to its staging file, resuming from the bytes already there (HTTP Range)
 * after a dropped connection and after a restart of the deployment manager — the Mender client
 * starts over instead (MEN-2293). Checks the size cap and free disk before and during. A 429 or
 * 503 with `Retry-After` is tried again after that wait (clamped), not before.
 */
/** Resolves with the bytes on disk; the artifact's content is checked by its reader (manifest checksums, signature). */
export async function downloadArtifact(opts: DownloadOptions): Promise<{ bytes: number }> {
  const { tap } = opts;
  try {
    const offset = sizeOf(opts.dest);
    if (tap && offset > 0) await pipeline(createReadStream(opts.dest, { end: offset - 1 }), tap, { end: false });
    for (let attempt = 0; ; attempt++) {
      try {
        await downloadOnce(opts);
        break;
      } catch (err) {
        const again = err instanceof Interrupted || err instanceof Throttled;
        if (opts.signal?.aborted || !again || attempt >= opts.attempts) throw err;
        if (err instanceof Throttled) {
          const waitMs = clampRetryAfter(err.retryAfterMs, { maxMs: opts.maxRetryAfterMs ?? RETRY_AFTER_MAX_MS });
          opts.log.warn(
            { attempt: attempt + 1, offset: sizeOf(opts.dest), reason: err.message, waitMs },
            "artifact download refused for now; trying again after the server's Retry-After",
          );
          try {
            await sleep(waitMs, undefined, opts.signal ? { signal: opts.signal } : {});
          } catch (abort) {
            throw fail('cancelled', abort);
          }
        } else
          opts.log.warn(
            { attempt: attempt + 1, offset: sizeOf(opts.dest), reason: err.message },
            'artifact download interrupted; resuming',
          );
      }
    }
  } catch (err) {
    tap?.destroy(err as Error);
    throw err;
  }
  tap?.end();
  return { bytes: sizeOf(opts.dest) };
}

const sizeOf = (file: string) => (existsSync(file) ? statSync(file).size : 0);

function checkDisk(dir: string, needed: number, reserve: number) {
  const fs = statfsSync(dir);
  const free = fs.bavail * fs.bsize;
  if (free < needed + reserve)
    throw diskLow(`not enough free disk in ${dir}: ${free} bytes free, ${needed + reserve} needed`);
}

function downloadOnce(opts: DownloadOptions): Promise<void> {
  const offset = sizeOf(opts.dest);
  return new Promise<void>((resolve, reject) => {
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const req = request(
      opts.url,
      { agent: opts.agent, headers, ...(opts.signal ? { signal: opts.signal } : {}) },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status === 416 && offset > 0) {
          // Everything is already here (a restart after the last byte, before the state moved on).
          res.resume();
          resolve();
          return;
        }
        if (status !== 200 && status !== 206) {
          res.resume();
          const retryAfterMs = retryAfterFrom({ statusCode: status, headers: res.headers });
          reject(retryAfterMs === undefined ? fail(`server answered ${status}`) : new Throttled(status, retryAfterMs));
          return;
        }
        // 200 to a range request: the server sends it all again, so start over.
        const start = status === 206 ? offset : 0;
        if (start === 0 && offset > 0 && opts.tap && !opts.tap.destroyed)
          opts.tap.destroy(fail('the server ignored the range request; the tap lost its order'));
        const total =
          status === 206
            ? Number(/\/(\d+)$/.exec(String(res.headers['content-range']))?.[1] ?? NaN)
            : Number(res.headers['content-length'] ?? NaN);
        if (Number.isFinite(total) && total > opts.maxBytes) {
          res.destroy();
          reject(fail(`artifact is ${total} bytes, more than the ${opts.maxBytes} allowed`));
          return;
        }
        try {
          checkDisk(dirname(opts.dest), (Number.isFinite(total) ? total : opts.maxBytes) - start, opts.reserveBytes);
        } catch (err) {
          res.destroy();
          reject(err);
          return;
        }
        const fd = openSync(opts.dest, start === 0 ? 'w' : 'a', 0o600);
        let written = start;
        // TLS records (16 KB) gathered and written with one writev(2) per ~1 MB, in the thread
        // pool, one at a time and in order: the event loop goes on reading, hashing and
        // unpacking meanwhile (a synchronous write of 200 MB held it ~0.25 s, issue 19).
        const disk = orderedWriter(fd);
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        let flushSoon: NodeJS.Timeout | undefined;
        let finished = false;
        /** Paused for the tap (the verifier behind) or the disk (writes behind): reading resumes when neither is. */
        const waiting = { tap: false, disk: false };
        const waitFor = (why: keyof typeof waiting, until: Promise<unknown>) => {
          waiting[why] = true;
          res.pause();
          void until.then(() => {
            waiting[why] = false;
            if (!waiting.tap && !waiting.disk && !finished) res.resume();
          });
        };
        const flush = () => {
          clearTimeout(flushSoon);
          flushSoon = undefined;
          if (pending.length === 0) return;
          disk.write(pending, pendingBytes);
          pending = [];
          pendingBytes = 0;
          // More than WRITES_IN_FLIGHT_BYTES queued (a disk slower than the link): stop reading until it catches up.
          if (disk.queuedBytes() > WRITES_IN_FLIGHT_BYTES && !waiting.disk)
            waitFor('disk', disk.below(WRITES_IN_FLIGHT_BYTES / 2));
        };
        const writeFailed = (err: unknown) =>
          isDiskFull(err)
            ? diskLow(`no space left writing ${opts.dest}`, err)
            : fail('cannot write the staging file', err);
        disk.failed.catch((err: unknown) => res.destroy(writeFailed(err)));
        // No byte for stallTimeoutMs: checked a few times per period, not a timer re-armed per 16 KB record.
        // Monotonic: a clock set back must not switch the stall detection off.
        let lastByteAt = performance.now();
        const stall = setInterval(
          () => {
            if (performance.now() - lastByteAt >= opts.stallTimeoutMs) res.destroy(new Interrupted('stalled'));
          },
          Math.max(10, Math.min(1000, opts.stallTimeoutMs / 4)),
        );
        const finish = (err?: Error) => {
          if (finished) return;
          finished = true;
          clearInterval(stall);
          flush();
          void disk.close().then(
            () => {
              opts.onProgress?.(sizeOf(opts.dest));
              if (err) reject(err);
              else resolve();
            },
            (writeErr: unknown) => {
              opts.onProgress?.(sizeOf(opts.dest));
              reject(err ?? writeFailed(writeErr));
            },
          );
        };
        res.on('data', (chunk: Buffer) => {
          written += chunk.length;
          if (written > opts.maxBytes) {
            res.destroy(fail(`artifact is more than the ${opts.maxBytes} bytes allowed`));
            return;
          }
          lastByteAt = performance.now();
          pending.push(chunk);
          pendingBytes += chunk.length;
          // A slow or stalled link: on disk within FLUSH_AFTER_MS anyway (a kill -9 resumes from there).
          flushSoon ??= setTimeout(flush, FLUSH_AFTER_MS);
          if (pendingBytes >= WRITE_BATCH_BYTES) flush();
          if (opts.tap && !opts.tap.destroyed && !opts.tap.write(chunk) && !waiting.tap)
            waitFor('tap', drained(opts.tap));
        });
        res.on('end', () => {
          if (Number.isFinite(total) && written < total) finish(new Interrupted('connection dropped'));
          else finish();
        });
        res.on('error', (err) => finish(err instanceof FortError ? err : new Interrupted('connection dropped', err)));
        res.on('aborted', () => finish(new Interrupted('connection dropped')));
      },
    );
    req.on('error', (err) =>
      reject(
        err instanceof FortError
          ? err
          : opts.signal?.aborted
            ? fail('cancelled', err)
            : new Interrupted('connection dropped', err),
      ),
    );
    req.end();
  });
}

/**
 * Writes batches to `fd` in the thread pool, one writev(2) at a time, in order (short writes
 * carried on), the kernel's writeback kicked as it goes. `close()` waits for the queue, fsyncs
 * and closes; `failed` rejects with the first write error (ENOSPC), after which nothing more is
 * written.
 */
function orderedWriter(fd: number) {
  const writeback = writebackKicker(fd);
  let queued = 0;
  let error: Error | undefined;
  let chain: Promise<void> = Promise.resolve();
  let waiters: { bytes: number; resolve: () => void }[] = [];
  let rejectFailed: (err: unknown) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (rejectFailed = reject));
  failed.catch(() => undefined);
  const writevAll = async (chunks: Buffer[]) => {
    let rest = chunks;
    while (rest.length > 0) {
      let done = (await promisify(writev)(fd, rest)).bytesWritten;
      writeback.wrote(done);
      const next: Buffer[] = [];
      for (const c of rest) {
        if (done >= c.length) done -= c.length;
        else {
          next.push(done > 0 ? c.subarray(done) : c);
          done = 0;
        }
      }
      rest = next;
    }
  };
  return {
    failed,
    queuedBytes: () => queued,
    /** Resolves once fewer than `bytes` are queued. */
    below(bytes: number): Promise<void> {
      if (queued < bytes || error) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ bytes, resolve }));
    },
    write(chunks: Buffer[], bytes: number) {
      queued += bytes;
      chain = chain.then(async () => {
        if (error === undefined)
          await writevAll(chunks).catch((err: unknown) => {
            error = err instanceof Error ? err : new Error(String(err));
            rejectFailed(error);
          });
        queued -= bytes;
        const ready = waiters.filter((w) => queued < w.bytes || error !== undefined);
        waiters = waiters.filter((w) => !ready.includes(w));
        for (const w of ready) w.resolve();
      });
    },
    async close(): Promise<void> {
      await chain;
      try {
        const kick = await writeback.settle().then(
          () => undefined,
          (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
        );
        if (error !== undefined) throw error;
        if (kick !== undefined) throw kick;
        await promisify(fsync)(fd);
      } finally {
        closeSync(fd);
      }
    },
  };
}
