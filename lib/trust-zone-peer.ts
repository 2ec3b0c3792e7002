import type { TLSSocket } from 'node:tls';
import { commonName } from './tls.js';

/**
 * Who a trust-zone peer is, from the TLS handshake: the agent's admin API and the engine's
 * server both name their callers this way.
 */

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

export interface PeerIdentity {
  name: string;
  fingerprint256: string;
}

/** Who the caller is, or why it is nobody the server answers. */
export type PeerDecision = { ok: true; peer: PeerIdentity } | { ok: false; reason: string };

/**
 * What the TLS handshake proved: the peer chains to the trust-zone root (checked by TLS), and
 * its certificate, for client authentication, names it.
 */
export function certificatePeer(socket: TLSSocket): PeerDecision {
  if (!socket.authorized)
    return {
      ok: false,
      reason: `client certificate not trusted: ${String(socket.authorizationError ?? 'none presented')}`,
    };
  const cert = socket.getPeerCertificate();
  const name = commonName(cert.subject);
  if (!name) return { ok: false, reason: 'client certificate has no common name' };
  const eku = cert.ext_key_usage;
  if (eku && !eku.includes(CLIENT_AUTH_OID))
    return { ok: false, reason: `certificate of ${name} is not for client authentication` };
  return { ok: true, peer: { name, fingerprint256: cert.fingerprint256 } };
}
