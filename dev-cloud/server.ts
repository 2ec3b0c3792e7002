import Fastify from 'fastify';
import type { Logger } from '../lib/logger.js';
import type { TlsMaterial } from '../lib/tls.js';

/**
 * HTTPS front of the dev cloud (the cloud API stand-in). The IoT bridge and the credentials
 * provider listen on their own ports; each must follow shared/PROTOCOLS.md exactly.
 */
export async function createDevCloudServer(deps: { tls: TlsMaterial; log: Logger; services: () => string[] }) {
  const app = Fastify({ loggerInstance: deps.log, https: { key: deps.tls.key, cert: deps.tls.cert } });
  app.get('/health', async () => ({ status: 'ok', services: deps.services() }));
  return app;
}
export type DevCloudServer = Awaited<ReturnType<typeof createDevCloudServer>>;
