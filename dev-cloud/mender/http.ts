import Fastify, { type FastifyReply } from 'fastify';
import type { Logger } from '../../lib/logger.js';
import type { TlsMaterial } from '../../lib/tls.js';

/**
 * The update server's HTTPS listener: mutual TLS, a client certificate from the device CA is
 * required in the handshake (none, or one from another CA, is refused before any HTTP).
 */
export function createMenderHttp(tls: TlsMaterial & { ca: Buffer }, log: Logger) {
  return Fastify({
    loggerInstance: log,
    https: { key: tls.key, cert: tls.cert, ca: tls.ca, requestCert: true, rejectUnauthorized: true },
  });
}
export type MenderHttp = ReturnType<typeof createMenderHttp>;

/** Mender's error body: `{"error", "request_id"}`. */
export function fail(reply: FastifyReply, status: number, error: string) {
  return reply.code(status).type('application/json').send({ error, request_id: reply.request.id });
}
