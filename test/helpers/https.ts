import { request } from 'node:https';
import type { PeerCertificate, TLSSocket } from 'node:tls';

export interface TlsClientOptions {
  ca: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface HttpsResult {
  status: number;
  body: string;
  peer: PeerCertificate & { issuerCertificate?: PeerCertificate };
}

/** One HTTPS request with explicit trust material and no connection reuse. */
export function httpsRequest(
  url: string,
  tls: TlsClientOptions,
  method = 'GET',
  headers: Record<string, string> = {},
): Promise<HttpsResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, headers, ca: tls.ca, cert: tls.cert, key: tls.key, agent: false, timeout: 5000 },
      (res) => {
        const peer = (res.socket as TLSSocket).getPeerCertificate(true);
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, peer }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export interface HttpsCallResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json(): unknown;
}

/** One HTTPS request trusting only `ca`, with an optional JSON or form body. */
export function httpsCall(
  baseUrl: string,
  ca: string | Buffer,
  method: string,
  path: string,
  opts: {
    json?: unknown;
    form?: Record<string, string> | string;
    headers?: Record<string, string>;
    /** Source address, e.g. another 127.0.0.x, to be another client host to the server. */
    localAddress?: string;
  } = {},
): Promise<HttpsCallResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  let payload: string | undefined;
  if (opts.json !== undefined) {
    payload = JSON.stringify(opts.json);
    headers['content-type'] ??= 'application/json';
  } else if (opts.form !== undefined) {
    payload = typeof opts.form === 'string' ? opts.form : new URLSearchParams(opts.form).toString();
    headers['content-type'] ??= 'application/x-www-form-urlencoded';
  }
  return new Promise((resolve, reject) => {
    const local = opts.localAddress ? { localAddress: opts.localAddress } : {};
    const req = request(
      new URL(path, baseUrl),
      { method, ca, headers, agent: false, timeout: 5000, ...local },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) as unknown }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}
