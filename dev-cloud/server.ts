import Fastify from 'fastify';
import type { Logger } from '../lib/logger.js';
import type { TlsMaterial } from '../lib/tls.js';

/**
 * HTTPS front of the dev cloud. The IoT bridge, cloud API and update server stand-ins
 * mount their routes here as they land; each must follow shared/PROTOCOLS.md exactly.
 */
export async function startDevCloudServer(deps: { host: string; port: number; tls: TlsMaterial; log: Logger }) {
  const app = Fastify({ loggerInstance: deps.log, https: { key: deps.tls.key, cert: deps.tls.cert } });
  app.get('/health', async () => ({ status: 'ok', services: [] as string[] }));
  await app.listen({ host: deps.host, port: deps.port });
  return app;
}
