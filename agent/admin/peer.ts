import type { FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import { commonName } from '../../lib/tls.js';

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

export interface PeerIdentity {
  name: string;
  fingerprint256: string;
}

/** Who the caller is, or why it is nobody the admin API answers. */
export type PeerDecision = { ok: true; peer: PeerIdentity } | { ok: false; reason: string };

/** Where the admin API learns who is calling; in production the request's TLS socket (tlsPeerOf). */
export type PeerSource = (req: FastifyRequest) => PeerDecision;

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

/** The peer of a request from its TLS socket: anything else (no TLS, no certificate) is not trusted. */
export const tlsPeerOf: PeerSource = (req) => certificatePeer(req.raw.socket as TLSSocket);

/** Whether that trust-zone member may use the admin API at all (`admin.allowed_clients`, by name); roles.ts decides per route. */
export function admitPeer(found: PeerDecision, allowed: ReadonlySet<string>): PeerDecision {
  if (found.ok && !allowed.has(found.peer.name))
    return { ok: false, reason: `trust-zone member ${found.peer.name} is not allowed on the admin API` };
  return found;
}
