import { createReadStream } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import type { FastifyReply } from 'fastify';
import { commonName } from '../../lib/tls.js';
import type { ArtifactStore } from './artifacts.js';
import type { MenderHttp } from './http.js';
import type { LinkSigner } from './tokens.js';

/** One `GET /download/<id>` as the server saw it (tests assert resume offsets on these). */
export interface DownloadRecord {
  at: string;
  artifactId: string;
  /** CN of the client certificate (mutual TLS). */
  clientCn: string | null;
  /** The `Range` header as sent, or null. */
  range: string | null;
  /** First and last byte served (inclusive); null when nothing was served. */
  start: number | null;
  end: number | null;
  status: number;
  /** Body bytes read from the file for this response so far. */
  bytesSent: number;
  /** The response was written completely. */
  complete: boolean;
  /** Cut off on purpose (`dropAfterBytes`, `stallAfterBytes`). */
  dropped: boolean;
}

/**
 * `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range; end clamped to the file). Anything else,
 * including several ranges, a < b reversed or a start past the end, is unsatisfiable (416).
 */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'unsatisfiable';
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || start > end || !Number.isSafeInteger(start)) return 'unsatisfiable';
  return { start, end };
}

export interface DownloadDeps {
  artifacts: ArtifactStore;
  signer: LinkSigner;
  now: () => Date;
  record: (r: DownloadRecord) => void;
  changed: () => void;
  /** The byte budget of the next download when a cut is armed (then disarmed), else undefined. */
  takeDrop: () => ArmedCut | undefined;
}

/** A fault armed for one download: after `bytes`, cut the connection, or stall (send nothing more) until `released`. */
export interface ArmedCut {
  bytes: number;
  stall?: Promise<void>;
}

/** Writes at most `limit` bytes of the file, then cuts the connection (a link dying mid-download), after a stall if armed. */
async function sendThenDrop(
  reply: FastifyReply,
  file: string,
  status: number,
  headers: Record<string, string | number>,
  start: number,
  limit: number,
  stall: Promise<void> | undefined,
  rec: DownloadRecord,
  changed: () => void,
) {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(status, headers);
  const write = (chunk: Buffer) =>
    new Promise<void>((resolve, reject) => res.write(chunk, (err) => (err ? reject(err) : resolve())));
  try {
    if (limit > 0) {
      for await (const chunk of createReadStream(file, { start, end: start + limit - 1 }) as AsyncIterable<Buffer>) {
        await write(chunk);
        rec.bytesSent += chunk.length;
      }
    } else {
      res.flushHeaders();
    }
    if (stall) {
      changed();
      // Until released, or until the client goes away (a killed deployment manager).
      await Promise.race([stall, new Promise<void>((r) => res.socket?.once('close', () => r()) ?? r())]);
    }
  } finally {
    rec.dropped = true;
    changed();
    res.socket?.destroy();
  }
}

/** The presigned artifact download, with HTTP range requests (resume). No JWT: the link is the credential. */
export function registerDownloadRoute(app: MenderHttp, deps: DownloadDeps) {
  app.get<{ Params: { id: string }; Querystring: { expire?: string; sig?: string } }>(
    '/download/:id',
    { exposeHeadRoute: false },
    async (req, reply) => {
      const { id } = req.params;
      const rec: DownloadRecord = {
        at: deps.now().toISOString(),
        artifactId: id,
        clientCn: commonName((req.raw.socket as TLSSocket).getPeerCertificate().subject) ?? null,
        range: req.headers.range ?? null,
        start: null,
        end: null,
        status: 0,
        bytesSent: 0,
        complete: false,
        dropped: false,
      };
      const done = (status: number) => {
        rec.status = status;
        deps.record(rec);
      };
      const check = deps.signer.check(id, req.query.expire, req.query.sig);
      if (check !== 'ok') {
        done(403);
        return reply.code(403).send({
          error: check === 'expired' ? 'download link expired' : 'download link signature mismatch',
          request_id: req.id,
        });
      }
      const artifact = deps.artifacts.get(id);
      if (!artifact) {
        done(404);
        return reply.code(404).send({ error: `no artifact ${id}`, request_id: req.id });
      }
      const range = parseRange(req.headers.range, artifact.size);
      if (range === 'unsatisfiable') {
        done(416);
        return reply
          .code(416)
          .header('content-range', `bytes */${artifact.size}`)
          .header('accept-ranges', 'bytes')
          .send({ error: `range not satisfiable: ${req.headers.range}`, request_id: req.id });
      }
      const start = range?.start ?? 0;
      const end = range?.end ?? artifact.size - 1;
      const status = range ? 206 : 200;
      const length = artifact.size === 0 ? 0 : end - start + 1;
      Object.assign(rec, { start, end: length === 0 ? null : end });
      const headers: Record<string, string | number> = {
        'content-type': 'application/vnd.mender-artifact',
        'content-length': length,
        'accept-ranges': 'bytes',
        etag: `"${artifact.sha256}"`,
        'cache-control': 'no-store',
        ...(range ? { 'content-range': `bytes ${start}-${end}/${artifact.size}` } : {}),
      };
      done(status);
      const drop = deps.takeDrop();
      if (drop !== undefined)
        return sendThenDrop(
          reply,
          artifact.file,
          status,
          headers,
          start,
          Math.min(drop.bytes, length),
          drop.stall,
          rec,
          deps.changed,
        );
      reply.raw.once('finish', () => {
        rec.complete = true;
        deps.changed();
      });
      const body = length === 0 ? '' : createReadStream(artifact.file, { start, end });
      if (typeof body !== 'string') body.on('data', (c: string | Buffer) => (rec.bytesSent += c.length));
      return reply.code(status).headers(headers).send(body);
    },
  );
}
