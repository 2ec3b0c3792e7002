import type { IncomingHttpHeaders } from 'node:http';
import { request, type Agent } from 'node:https';
import { Readable } from 'node:stream';
import { FortError, type FortErrorCode } from './errors.js';

export interface JsonResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  text: string;
}

export interface HttpsJsonOptions {
  /**
   * Carries the TLS material (CA, client cert) and, through a proxy, the tunnel; a function when
   * the material may be replaced (a renewed client certificate, SIGHUP): asked at every request.
   */
  agent: Agent | (() => Agent);
  timeoutMs: number;
  /** Names the peer in errors, e.g. "agent admin API https://127.0.0.1:8444". */
  peer: string;
  /** Stable code of the errors this client raises. */
  errorCode: FortErrorCode;
  /** Bodies beyond this are refused, so a broken peer cannot fill memory. */
  maxBodyBytes?: number;
}

export interface JsonRequest {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  /** Sent as JSON, or as-is when a string (with its content-type in `headers`). */
  body?: unknown;
  /**
   * Sent chunked as it is produced, instead of `body` (content-type in `headers`). An error it
   * throws fails the request with that error; an answer before its end stops it.
   */
  stream?: AsyncIterable<string | Buffer>;
  /** Overrides the client's timeout for this request (e.g. a long load). */
  timeoutMs?: number;
  /** Aborting destroys the request: the peer sees the connection close. */
  signal?: AbortSignal;
}

/**
 * One JSON request/response over HTTPS, on `node:https`. Written by hand rather than with
 * got on purpose: got (with http2-wrapper) adds ~10 MB RSS to a process that already
 * serves HTTPS, and the agent's idle budget with an open IoT link is 80 MB (measured in
 * `npm run bench`). Retries and backoff belong to the callers, which know what is safe to repeat.
 */
export function createJsonClient(opts: HttpsJsonOptions) {
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  const fail = (message: string, cause?: unknown) =>
    new FortError(opts.errorCode, `${opts.peer}: ${message}`.replace(/\s+/g, ' '), { fatal: false, cause });

  const send = (url: URL, init: JsonRequest = {}): Promise<JsonResponse> =>
    new Promise((resolve, reject) => {
      const body =
        init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
      const headers: Record<string, string> = {
        accept: 'application/json',
        ...(body !== undefined && typeof init.body !== 'string' ? { 'content-type': 'application/json' } : {}),
        ...init.headers,
      };
      if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
      const source = init.stream && Readable.from(init.stream, { objectMode: false });
      const agent = typeof opts.agent === 'function' ? opts.agent() : opts.agent;
      const req = request(url, { method: init.method ?? 'GET', agent, headers }, (res) => {
        // The peer answered before the end of what we were sending: the rest is of no use to it.
        if (source && !source.readableEnded) {
          source.unpipe(req);
          source.destroy();
          res.on('end', () => req.destroy());
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= maxBody) chunks.push(c);
          else req.destroy(fail(`response body over ${maxBody} bytes`));
        });
        res.on('error', (err) => reject(err instanceof FortError ? err : fail(`unreachable: ${err.message}`, err)));
        res.on('end', () => {
          if (size <= maxBody)
            resolve({
              statusCode: res.statusCode ?? 0,
              headers: res.headers,
              text: Buffer.concat(chunks).toString('utf8'),
            });
        });
      });
      // Over the whole exchange, not only idle time (so no socket idle timeout besides it): a
      // peer trickling bytes must not hold us forever.
      const timeoutMs = init.timeoutMs ?? opts.timeoutMs;
      const deadline = setTimeout(
        () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })),
        timeoutMs,
      );
      const abort = () => req.destroy(fail('request cancelled'));
      if (init.signal?.aborted) abort();
      init.signal?.addEventListener('abort', abort, { once: true });
      req.on('close', () => {
        // Whatever produced the stream (e.g. a fetch) stops with the request.
        source?.destroy();
        clearTimeout(deadline);
        init.signal?.removeEventListener('abort', abort);
      });
      req.on('error', (err: NodeJS.ErrnoException) =>
        reject(err instanceof FortError ? err : fail(`unreachable: ${err.code ?? ''} ${err.message}`, err)),
      );
      if (source) source.on('error', (err) => req.destroy(err)).pipe(req);
      else req.end(body);
    });

  return {
    send,
    /** The body parsed as JSON; a non-JSON body is an error that names the status, never the body. */
    json<T>(res: JsonResponse): T {
      try {
        return (res.text ? JSON.parse(res.text) : {}) as T;
      } catch (err) {
        throw fail(
          `answered ${res.statusCode} with a non-JSON body`,
          Object.assign(err as Error, { code: 'FORT_ERR_BAD_RESPONSE' satisfies FortErrorCode }),
        );
      }
    },
  };
}
export type JsonClient = ReturnType<typeof createJsonClient>;

/**
 * An https.Agent whose TLS material can be replaced (a renewed certificate): requests from then
 * on go through a new agent; the old one's sockets are closed a little later, so requests under
 * way finish.
 */
export function replaceableAgent<M>(make: (material: M) => Agent, material: M) {
  let current = make(material);
  return {
    get: () => current,
    replace(next: M): void {
      const old = current;
      current = make(next);
      setTimeout(() => old.destroy(), 30_000).unref();
    },
    destroy: () => current.destroy(),
  };
}
