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
export function httpsRequest(url: string, tls: TlsClientOptions, method = 'GET'): Promise<HttpsResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca: tls.ca, cert: tls.cert, key: tls.key, agent: false, timeout: 5000 }, (res) => {
      const peer = (res.socket as TLSSocket).getPeerCertificate(true);
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, peer }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
