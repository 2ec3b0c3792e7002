import type { FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import { certificatePeer, type PeerDecision } from '../../lib/trust-zone-peer.js';

export { certificatePeer, type PeerDecision, type PeerIdentity } from '../../lib/trust-zone-peer.js';

/** Where the admin API learns who is calling; in production the request's TLS socket (tlsPeerOf). */
export type PeerSource = (req: FastifyRequest) => PeerDecision;

/** The peer of a request from its TLS socket: anything else (no TLS, no certificate) is not trusted. */
export const tlsPeerOf: PeerSource = (req) => certificatePeer(req.raw.socket as TLSSocket);

/** Whether that trust-zone member may use the admin API at all (`admin.allowed_clients`, by name); roles.ts decides per route. */
export function admitPeer(found: PeerDecision, allowed: ReadonlySet<string>): PeerDecision {
  if (found.ok && !allowed.has(found.peer.name))
    return { ok: false, reason: `trust-zone member ${found.peer.name} is not allowed on the admin API` };
  return found;
}
