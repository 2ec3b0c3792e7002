import { Agent, request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { FortError } from '../../lib/errors.js';
import { proxyAgentFor, type ProxySettings, type TunnelTls } from '../../lib/proxy.js';
import { commonName } from '../../lib/tls.js';

export type ProbeResult =
  | {
      ok: true;
      status: number;
      ms: number;
      server: string | undefined;
      viaProxy: boolean;
      /** The `Date` header, ms since the epoch. */ date: number | undefined;
      receivedAt: number;
    }
  | { ok: false; reason: string };

/**
 * One GET over HTTPS with exactly the trust (CA) and identity (client certificate) the service
 * uses, through the proxy when it would go through it. Any HTTP answer means the TLS session
 * was established both ways: verification stays on, so a failure is the reason it failed.
 */
export function probeHttps(
  url: URL,
  tls: TunnelTls,
  proxy: ProxySettings | undefined,
  timeoutMs: number,
): Promise<ProbeResult> {
  const tunnel = proxyAgentFor(url, proxy, tls);
  const agent = tunnel ?? new Agent(tls);
  const started = performance.now();
  return new Promise<ProbeResult>((resolve) => {
    const req = request(url, { method: 'GET', agent, headers: { accept: '*/*' } }, (res) => {
      const receivedAt = Date.now();
      const date = res.headers.date ? Date.parse(res.headers.date) : NaN;
      const server = commonName((res.socket as TLSSocket).getPeerCertificate().subject);
      resolve({
        ok: true,
        status: res.statusCode ?? 0,
        ms: Math.round(performance.now() - started),
        server,
        viaProxy: tunnel !== undefined,
        date: Number.isFinite(date) ? date : undefined,
        receivedAt,
      });
      // The answer itself does not matter: cut it short (an unfinished body then ends in an "aborted" error, expected).
      res.on('error', () => {});
      req.destroy();
    });
    const timer = setTimeout(
      () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })),
      timeoutMs,
    );
    req.on('close', () => clearTimeout(timer));
    req.on('error', (err) => {
      // The server's certificate passed (ours was sent) and then the server hung up.
      const afterHandshake = (req.socket as TLSSocket | null)?.authorized === true && tls.cert !== undefined;
      resolve({ ok: false, reason: describeFailure(err, timeoutMs, afterHandshake) });
    });
    req.end();
  }).finally(() => agent.destroy());
}

/** What Node's TLS and socket error codes mean to an operator. */
const REASONS: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'certificate signed by unknown authority',
  UNABLE_TO_GET_ISSUER_CERT: 'certificate signed by unknown authority',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'certificate signed by unknown authority',
  SELF_SIGNED_CERT_IN_CHAIN: 'certificate signed by unknown authority (a self-signed root not in the CA bundle)',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate not in the CA bundle',
  CERT_HAS_EXPIRED: 'server certificate expired (or the host clock is ahead)',
  CERT_NOT_YET_VALID: 'server certificate not yet valid (or the host clock is behind)',
  CERT_REVOKED: 'server certificate revoked',
  ERR_TLS_CERT_ALTNAME_INVALID: 'hostname mismatch',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'the server requires a client certificate',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'the server does not trust our client certificate (unknown CA)',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'the server refused our client certificate',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: 'the server refused our client certificate as expired',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED: 'the server refused our client certificate as revoked',
  ERR_SSL_WRONG_VERSION_NUMBER: 'not a TLS server (plain HTTP on that port?)',
  ECONNREFUSED: 'connection refused (nothing listens there)',
  ECONNRESET: 'connection reset by the peer',
  ENOTFOUND: 'host name does not resolve',
  EAI_AGAIN: 'host name lookup failed (DNS unreachable?)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

/**
 * One line: the meaning, then the code; a proxy failure keeps its own message (it names the
 * proxy and status). `closedAfterClientCert`: the connection broke after a handshake in which
 * we sent a client certificate, which is how a TLS 1.3 server refuses one (its alert often
 * arrives as a reset, our request being still unread).
 */
export function describeFailure(err: Error, timeoutMs: number, closedAfterClientCert = false): string {
  if (err instanceof FortError) return err.message;
  const e = err as NodeJS.ErrnoException & { reason?: string };
  if (e.code === 'ETIMEDOUT') return `no answer within ${timeoutMs} ms`;
  if (closedAfterClientCert && (e.code === 'ECONNRESET' || e.code === 'EPIPE'))
    return `the server hung up right after the TLS handshake: it refused our client certificate (${e.code})`;
  const meaning = e.code ? REASONS[e.code] : undefined;
  if (!meaning) return e.code ? `${e.message} (${e.code})` : e.message;
  // Node's reason says which names the certificate has, e.g. "IP: 127.0.0.2 is not in the cert's list: 127.0.0.1".
  return `${meaning}${e.code === 'ERR_TLS_CERT_ALTNAME_INVALID' && e.reason ? `: ${e.reason}` : ''} (${e.code})`;
}
