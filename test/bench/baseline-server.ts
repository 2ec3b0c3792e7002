#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { fastify, type FastifyInstance } from 'fastify';
import { createLogger } from '../../lib/logger.js';
import { createNotifier } from '../../lib/sd-notify.js';
import { readRuntimeEnv } from '../../lib/runtime-env.js';
import { createClientApiServer } from '../../agent/api/plumbing.js';

/**
 * Bench baselines: the least a Node HTTPS service can do — a bare Fastify server with the
 * agent's client-zone cert, READY=1 once listening. Usage:
 *   baseline-server.js <cert> <key> <port> [body.json] [--plumbing]
 * With a body file, GET /body answers exactly those bytes (what the agent would send).
 * With --plumbing, the server is the client API's own (request ids, security headers, CORS,
 * both rate limits, an identity set by an async hook) with no token check, authorisation,
 * audit or SQLite: what the route costs before the fort does any work of its own.
 */
const [cert, key, port, bodyFile, mode] = process.argv.slice(2);
if (!cert || !key || !port) {
  process.stderr.write('usage: baseline-server.js <cert> <key> <port> [body.json] [--plumbing]\n');
  process.exit(64);
}
const log = createLogger({ level: 'info', name: 'bench-baseline' });
const notifier = createNotifier(readRuntimeEnv('UNUSED').notify, log);
const tls = { cert: readFileSync(cert), key: readFileSync(key) };
const body = bodyFile ? readFileSync(bodyFile) : undefined;
const routes = (scope: FastifyInstance) => {
  scope.get('/health', async () => ({ status: 'ok' }));
  if (body) scope.get('/body', async (_req, reply) => reply.type('application/json; charset=utf-8').send(body));
};
let app: FastifyInstance;
if (mode === '--plumbing') {
  const server = await createClientApiServer(
    {
      cors_origins: ['https://hub.example'],
      rate_limit: { per_ip_per_minute: 1_000_000, per_user_per_minute: 1_000_000 },
    },
    tls,
    log,
  );
  await server.app.register(async (scope) => {
    scope.addHook('onRequest', async (req) => {
      req.identity = { user: 'alice', tenant: 't1' };
    });
    scope.addHook('preHandler', server.perUser);
    routes(scope);
  });
  app = server.app as unknown as FastifyInstance;
} else {
  app = fastify({ https: tls });
  routes(app);
}
await app.listen({ host: '127.0.0.1', port: Number(port) });
notifier.ready(`listening on ${port}`);

const stop = () => {
  notifier.stopping();
  void app.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
