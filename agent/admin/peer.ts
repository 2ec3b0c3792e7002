import type { TLSSocket } from 'node:tls';
import { commonName } from '../../lib/tls.js';

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

export interface PeerIdentity {
  name: string;
  fingerprint256: string;
}

/**
 * TLS already proved the peer chains to the trust-zone root; this decides whether that
 * trust-zone member may use the admin API (its role, by common name, and its key usage).
 */
export function authorizePeer(socket: TLSSocket, allowed: ReadonlySet<string>): { ok: true; peer: PeerIdentity } | { ok: false; reason: string } {
  if (!socket.authorized) return { ok: false, reason: `client certificate not trusted: ${String(socket.authorizationError ?? 'none presented')}` };
  const cert = socket.getPeerCertificate();
  const name = commonName(cert.subject as unknown as Record<string, unknown>);
  if (!name) return { ok: false, reason: 'client certificate has no common name' };
  const eku = cert.ext_key_usage;
  if (eku && !eku.includes(CLIENT_AUTH_OID)) return { ok: false, reason: `certificate of ${name} is not for client authentication` };
  if (!allowed.has(name)) return { ok: false, reason: `trust-zone member ${name} is not allowed on the admin API` };
  return { ok: true, peer: { name, fingerprint256: cert.fingerprint256 } };
}
