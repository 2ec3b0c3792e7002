import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { downloadArtifact } from '../../../../deployment-manager/update/download.js';
import { FortError } from '../../../../lib/errors.js';
import type { PkiPaths } from '../../../../lib/pki/layout.js';
import { tempDir, testPki } from '../../../helpers/fort.js';

const log = pino({ level: 'silent' });

/**
 * The downloader against a real mutual-TLS HTTPS server that serves ranges and can drop
 * connections part way (what a flaky link or a load balancer does to a long download).
 */
describe('artifact download (resume with HTTP ranges)', () => {
  let pki: PkiPaths;
  let server: Server;
  let url: URL;
  let agent: Agent;
  const body = randomBytes(3 * 1024 * 1024 + 17);
  const sha = createHash('sha256').update(body).digest('hex');
  /** Every request: its Range, the body bytes sent, its status and when it arrived (performance.now()). */
  const seen: { range: string | undefined; sent: number; status?: number; at?: number }[] = [];
  let dropAfter: number[] = [];
  /** Answers for the next requests instead of the artifact (429/503 with or without Retry-After). */
  let refuse: { status: number; headers: Record<string, string> }[] = [];
  let stallOnce = false;
  let ignoreRanges = false;

  beforeAll(async () => {
    pki = await testPki();
    server = createServer(
      {
        cert: readFileSync(pki.cloudServer.devCloudCert),
        key: readFileSync(pki.cloudServer.devCloudKey),
        ca: readFileSync(pki.cloudDevice.ca),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
        const start = m && !ignoreRanges ? Number(m[1]) : 0;
        const entry: (typeof seen)[number] = { range: req.headers.range, sent: 0, at: performance.now() };
        seen.push(entry);
        const refusal = refuse.shift();
        if (refusal) {
          entry.status = refusal.status;
          res.writeHead(refusal.status, refusal.headers).end('busy');
          return;
        }
        if (start >= body.length) {
          res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
          return;
        }
        res.writeHead(m && !ignoreRanges ? 206 : 200, {
          'content-length': body.length - start,
          ...(m && !ignoreRanges ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
          'accept-ranges': 'bytes',
        });
        const limit = dropAfter.shift();
        if (stallOnce) {
          stallOnce = false;
          res.write(body.subarray(start, start + 1000));
          entry.sent = 1000;
          return; // never another byte: the client's stall timer must fire
        }
        const chunk = body.subarray(start, limit === undefined ? undefined : start + limit);
        entry.sent = chunk.length;
        if (limit === undefined) res.end(chunk);
        else res.write(chunk, () => res.socket?.destroy());
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = new URL(`https://127.0.0.1:${(server.address() as AddressInfo).port}/download/a1`);
    agent = new Agent({
      ca: readFileSync(pki.cloudServer.ca),
      cert: readFileSync(pki.cloudDevice.deviceCert),
      key: readFileSync(pki.cloudDevice.deviceKey),
    });
  });
  // A refusal a failed test left armed must not answer the next test.
  beforeEach(() => {
    refuse = [];
  });
  afterAll(() => {
    agent?.destroy();
    server?.close();
  });

  /** The download's result with the SHA-256 of what it left on disk. */
  const fetched = async (o: Parameters<typeof downloadArtifact>[0]) => ({
    ...(await downloadArtifact(o)),
    sha256: createHash('sha256').update(readFileSync(o.dest)).digest('hex'),
  });
  /** A tap that hashes what it gets, slowly (so the download is paced by it), and whether it was ended or destroyed. */
  const slowTap = () => {
    const hash = createHash('sha256');
    let bytes = 0;
    const tap = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        bytes += chunk.length;
        setImmediate(cb);
      },
    });
    tap.on('error', () => undefined);
    const ended = new Promise<string>((resolve) => {
      tap.on('finish', () => resolve(`ended ${bytes} ${hash.digest('hex')}`));
      tap.on('close', () => resolve(tap.errored ? `destroyed: ${tap.errored.message}` : 'closed'));
    });
    return { tap, ended };
  };
  const opts = (dest: string, over: Partial<Parameters<typeof downloadArtifact>[0]> = {}) => ({
    url,
    agent,
    dest,
    maxBytes: 10 * 1024 * 1024,
    reserveBytes: 0,
    stallTimeoutMs: 2000,
    attempts: 5,
    log,
    ...over,
  });

  it('resumes from the offset after three dropped connections: ranges asked, same hash', async () => {
    seen.length = 0;
    dropAfter = [500_000, 700_000, 900_000];
    const dest = join(tempDir('dl'), 'a.mender');
    const progress: number[] = [];
    const { tap, ended } = slowTap();
    const r = await fetched(opts(dest, { onProgress: (b) => progress.push(b), tap }));
    expect(r).toEqual({ bytes: body.length, sha256: sha });
    // The tap saw every byte once, in order, across the cuts.
    expect(await ended).toBe(`ended ${body.length} ${sha}`);
    // Each request resumes exactly where the bytes on disk ended (a dropped TLS stream may lose
    // what was in flight, so those are counted by the client, not assumed from the server).
    expect(progress).toHaveLength(4);
    expect(seen.map((s) => s.range)).toEqual([undefined, ...progress.slice(0, 3).map((b) => `bytes=${b}-`)]);
    expect(progress[0]).toBeGreaterThan(0);
    expect(progress[0]).toBeLessThanOrEqual(500_000);
    expect(progress[2]! - progress[1]!).toBeLessThanOrEqual(900_000);
    expect(progress[3]).toBe(body.length);
  });

  it('resumes a partial file left by an earlier run (a restart of the deployment manager)', async () => {
    seen.length = 0;
    dropAfter = [];
    const dest = join(tempDir('dl'), 'a.mender');
    writeFileSync(dest, body.subarray(0, 1_234_567));
    const { tap, ended } = slowTap();
    expect(await fetched(opts(dest, { tap }))).toEqual({ bytes: body.length, sha256: sha });
    expect(await ended).toBe(`ended ${body.length} ${sha}`); // the part on disk first, then the rest
    expect(seen.map((s) => [s.range, s.sent])).toEqual([['bytes=1234567-', body.length - 1_234_567]]);
  });

  it('starts over when the server ignores the range (200), and treats 416 on a complete file as done', async () => {
    seen.length = 0;
    ignoreRanges = true;
    const dest = join(tempDir('dl'), 'a.mender');
    writeFileSync(dest, randomBytes(1000)); // not even the right bytes: must be replaced, not appended to
    const { tap, ended } = slowTap();
    try {
      expect(await fetched(opts(dest, { tap }))).toEqual({ bytes: body.length, sha256: sha });
      // The tap already had the old prefix: it cannot be fed in order any more.
      expect(await ended).toBe(
        'destroyed: artifact download: the server ignored the range request; the tap lost its order',
      );
    } finally {
      ignoreRanges = false;
    }
    expect(await fetched(opts(dest))).toEqual({ bytes: body.length, sha256: sha });
    expect(seen.at(-1)?.range).toBe(`bytes=${body.length}-`);
  });

  it('drops a stalled connection and resumes', async () => {
    seen.length = 0;
    stallOnce = true;
    const dest = join(tempDir('dl'), 'a.mender');
    expect(await fetched(opts(dest, { stallTimeoutMs: 300 }))).toEqual({ bytes: body.length, sha256: sha });
    expect(seen.map((s) => s.range)).toEqual([undefined, 'bytes=1000-']);
  });

  it('refuses an artifact over the size cap, and more interruptions than allowed', async () => {
    const dest = join(tempDir('dl'), 'a.mender');
    await expect(downloadArtifact(opts(dest, { maxBytes: 1024 * 1024 }))).rejects.toThrow(
      `artifact download: artifact is ${body.length} bytes, more than the 1048576 allowed`,
    );
    dropAfter = [1000, 1000, 1000];
    await expect(downloadArtifact(opts(join(tempDir('dl'), 'b.mender'), { attempts: 2 }))).rejects.toThrow(
      'artifact download: connection dropped',
    );
    dropAfter = [];
  });

  /** Milliseconds between the arrivals of requests i and i + 1. */
  const gap = (i: number) => seen[i + 1]!.at! - seen[i]!.at!;
  /** A 1 ms allowance for timer rounding (libuv counts whole milliseconds). */
  const EARLY = 1;

  it('429/503 with Retry-After (delta-seconds): the next try comes no sooner, then resumes from the offset', async () => {
    seen.length = 0;
    dropAfter = [600_000];
    // The resumed request is refused once: it is asked again, with the same range, after 1 s.
    refuse = [];
    const dest = join(tempDir('dl'), 'a.mender');
    const { tap, ended } = slowTap();
    const progress: number[] = [];
    const run = fetched(
      opts(dest, {
        tap,
        onProgress: (b) => {
          progress.push(b);
          if (progress.length === 1) refuse = [{ status: 503, headers: { 'retry-after': '1' } }];
        },
      }),
    );
    expect(await run).toEqual({ bytes: body.length, sha256: sha });
    expect(await ended).toBe(`ended ${body.length} ${sha}`);
    expect(seen.map((s) => [s.range, s.status])).toEqual([
      [undefined, undefined],
      [`bytes=${progress[0]}-`, 503],
      [`bytes=${progress[0]}-`, undefined],
    ]);
    expect(gap(0)).toBeLessThan(30_000);
    expect(gap(1)).toBeGreaterThanOrEqual(1000 - EARLY);
    expect(gap(1)).toBeLessThan(30_000);
  });

  it("429 with an HTTP-date: measured from the answer's Date, whatever the clocks say", async () => {
    seen.length = 0;
    // A server whose clock is in 1994: 2 s after its own Date, not 32 years ago.
    const served = Date.UTC(1994, 10, 6, 8, 49, 37);
    refuse = [
      {
        status: 429,
        headers: { date: new Date(served).toUTCString(), 'retry-after': new Date(served + 2000).toUTCString() },
      },
    ];
    const dest = join(tempDir('dl'), 'a.mender');
    expect(await fetched(opts(dest))).toEqual({ bytes: body.length, sha256: sha });
    expect(seen.map((s) => s.status)).toEqual([429, undefined]);
    expect(gap(0)).toBeGreaterThanOrEqual(2000 - EARLY);
    expect(gap(0)).toBeLessThan(30_000);
  });

  it("a huge Retry-After is clamped to the caller's max (and 0 to at least 1 s)", async () => {
    seen.length = 0;
    refuse = [
      { status: 503, headers: { 'retry-after': '999999999' } },
      { status: 429, headers: { 'retry-after': '0' } },
    ];
    const dest = join(tempDir('dl'), 'a.mender');
    expect(await fetched(opts(dest, { maxRetryAfterMs: 1500 }))).toEqual({ bytes: body.length, sha256: sha });
    expect(seen.map((s) => s.status)).toEqual([503, 429, undefined]);
    expect(gap(0)).toBeGreaterThanOrEqual(1500 - EARLY);
    expect(gap(0)).toBeLessThan(30_000); // not 31 years
    expect(gap(1)).toBeGreaterThanOrEqual(1000 - EARLY);
    expect(gap(1)).toBeLessThan(30_000);
  });

  it('an abort ends the wait for a Retry-After at once', async () => {
    seen.length = 0;
    refuse = [{ status: 503, headers: { 'retry-after': '999999999' } }];
    const abort = new AbortController();
    // Aborted when the downloader says it is waiting (clamped to 1 h): not by a timer.
    const log = pino(
      { level: 'warn' },
      {
        write(line: string) {
          if (line.includes('Retry-After')) abort.abort();
        },
      },
    );
    const dest = join(tempDir('dl'), 'a.mender');
    const started = performance.now();
    await expect(downloadArtifact(opts(dest, { signal: abort.signal, log }))).rejects.toThrow(
      'artifact download: cancelled',
    );
    expect(abort.signal.aborted).toBe(true);
    expect(performance.now() - started).toBeLessThan(20_000);
    expect(seen.map((s) => s.status)).toEqual([503]);
  });

  it('no retry without a usable Retry-After (as before); the last refusal carries retryAfterMs', async () => {
    seen.length = 0;
    for (const headers of [{}, { 'retry-after': 'soon' }, { 'retry-after': '-1' }] as Record<string, string>[]) {
      refuse = [{ status: 503, headers }];
      const err = await downloadArtifact(opts(join(tempDir('dl'), 'a.mender'))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FortError);
      expect([(err as FortError).message, (err as FortError).retryAfterMs]).toEqual([
        'artifact download: server answered 503',
        undefined,
      ]);
    }
    expect(seen.map((s) => s.status)).toEqual([503, 503, 503]);

    seen.length = 0;
    refuse = [
      { status: 429, headers: { 'retry-after': '1' } },
      { status: 429, headers: { 'retry-after': '7200' } },
    ];
    const err = await downloadArtifact(opts(join(tempDir('dl'), 'b.mender'), { attempts: 1 })).catch((e: unknown) => e);
    expect([(err as FortError).message, (err as FortError).code, (err as FortError).retryAfterMs]).toEqual([
      'artifact download: server answered 429 (retry after 60 min)',
      'FORT_ERR_UPDATE_SERVER',
      3_600_000,
    ]);
    expect(seen.map((s) => s.status)).toEqual([429, 429]);
    expect(gap(0)).toBeGreaterThanOrEqual(1000 - EARLY);
  });

  it('refuses when the disk cannot hold the artifact plus the reserve', async () => {
    const dest = join(tempDir('dl'), 'a.mender');
    await expect(downloadArtifact(opts(dest, { reserveBytes: Number.MAX_SAFE_INTEGER }))).rejects.toThrow(
      /not enough free disk/,
    );
  });
});
