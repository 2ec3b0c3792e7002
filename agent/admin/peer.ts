import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import { commonName } from '../../lib/tls.js';
import { sendProblem } from '../../lib/http-problem.js';

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

/** The deployment manager's own calls: any other certificate gets 403 (false: answered). */
export function deploymentManagerOnly(req: FastifyRequest, reply: FastifyReply, action: string): boolean {
  if (req.peer?.name === 'deployment-manager') return true;
  void sendProblem(reply, 403, 'FORT_ERR_FORBIDDEN', 'Forbidden', `only the deployment manager ${action}`);
  return false;
}

/** Operator actions only: the deployment manager's certificate gets 403 (false: answered). */
export function operatorOnly(req: FastifyRequest, reply: FastifyReply, action: string): boolean {
  if (req.peer?.name !== 'deployment-manager') return true;
  void sendProblem(reply, 403, 'FORT_ERR_FORBIDDEN', 'Forbidden', `${action} is an operator action (fortctl)`);
  return false;
}
