import Fastify from 'fastify';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../../lib/logger.js';
import type { TlsMaterial } from '../../lib/tls.js';
import type { CredentialStore } from './credential-store.js';

/**
 * Stand-in for the AWS IoT credentials provider: mutual TLS with a device certificate from
 * the cloud device CA, `GET /role-aliases/<alias>/credentials`, header x-amzn-iot-thingname
 * naming the thing the certificate belongs to (here: its CN).
 */
export async function startCredentialsProvider(deps: {
  host: string;
  port: number;
  tls: TlsMaterial & { ca: Buffer };
  roleAlias: string;
  lifetimeSeconds: number;
  store: CredentialStore;
  /** A revoked fort's device certificate (upper-case hex serial) gets no credentials. */
  isRevoked?: (serial: string) => boolean;
  log: Logger;
  now?: () => Date;
}) {
  const now = deps.now ?? (() => new Date());
  const app = Fastify({
    loggerInstance: deps.log,
    https: { key: deps.tls.key, cert: deps.tls.cert, ca: deps.tls.ca, requestCert: true, rejectUnauthorized: true },
  });
  // Clients measure their clock skew from this header, as against AWS.
  app.addHook('onSend', async (_req, reply) => {
    reply.header('date', now().toUTCString());
  });
  app.get<{ Params: { alias: string } }>('/role-aliases/:alias/credentials', async (req, reply) => {
    const thing = req.headers['x-amzn-iot-thingname'];
    const peer = (req.raw.socket as TLSSocket).getPeerCertificate();
    const cn = peer.subject?.CN;
    if (deps.isRevoked?.(peer.serialNumber)) {
      req.log.warn({ thing: cn }, 'credentials refused: the fort is revoked');
      return reply.code(403).send({ message: 'Access Denied' });
    }
    if (req.params.alias !== deps.roleAlias) return reply.code(404).send({ message: 'Role alias does not exist' });
    if (typeof thing !== 'string' || thing !== cn) return reply.code(403).send({ message: 'Access Denied' });
    const c = deps.store.issue(thing, deps.lifetimeSeconds);
    return {
      credentials: {
        accessKeyId: c.accessKeyId,
        secretAccessKey: c.secretAccessKey,
        sessionToken: c.sessionToken,
        expiration: c.expiration.toISOString(),
      },
    };
  });
  await app.listen({ host: deps.host, port: deps.port });
  return app;
}
