import Fastify from 'fastify';
import helmet from '@fastify/helmet';
import type { Logger } from '../../lib/logger.js';
import type { TlsMaterial } from '../../lib/tls.js';
import { sendProblem } from '../../lib/http-problem.js';

export interface ClientApiDeps {
  host: string;
  port: number;
  /** Client-zone certificate: browsers trust this CA, never the trust-zone root. */
  tls: TlsMaterial;
  isDraining: () => boolean;
  log: Logger;
}

/** Client-zone HTTPS API for browsers on the private network. JWT auth lands with the cloud link. */
export async function startClientApi(deps: ClientApiDeps) {
  const app = Fastify({
    loggerInstance: deps.log,
    bodyLimit: 256 * 1024,
    https: { key: deps.tls.key, cert: deps.tls.cert, minVersion: 'TLSv1.2' },
  });
  await app.register(helmet, { contentSecurityPolicy: { directives: { defaultSrc: ["'self'"] } } });

  app.get('/health', async (_req, reply) => {
    if (deps.isDraining()) return sendProblem(reply, 503, 'FORT_ERR_DRAINING', 'Draining', 'the agent is restarting');
    return { status: 'ok' };
  });

  app.setNotFoundHandler((req, reply) => sendProblem(reply, 404, 'FORT_ERR_NOT_FOUND', 'Not found', `${req.method} ${req.url}`));

  await app.listen({ host: deps.host, port: deps.port });
  return app;
}
