import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { downloadArtifact } from '../../../../deployment-manager/update/download.js';
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
  const seen: { range: string | undefined; sent: number }[] = [];
  let dropAfter: number[] = [];
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
        const entry = { range: req.headers.range, sent: 0 };
        seen.push(entry);
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

  it('refuses when the disk cannot hold the artifact plus the reserve', async () => {
    const dest = join(tempDir('dl'), 'a.mender');
    await expect(downloadArtifact(opts(dest, { reserveBytes: Number.MAX_SAFE_INTEGER }))).rejects.toThrow(
      /not enough free disk/,
    );
  });
});
