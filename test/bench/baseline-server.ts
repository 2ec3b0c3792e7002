#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { fastify } from 'fastify';
import { createLogger } from '../../lib/logger.js';
import { createNotifier } from '../../lib/sd-notify.js';
import { readRuntimeEnv } from '../../lib/runtime-env.js';

/**
 * Bench baseline: the least a Node HTTPS service can do — a bare Fastify server with the
 * agent's client-zone cert, READY=1 once listening. Usage: baseline-server.js <cert> <key> <port> [body.json]
 * With a body file, GET /body answers exactly those bytes (what the agent would send).
 */
const [cert, key, port, bodyFile] = process.argv.slice(2);
if (!cert || !key || !port) {
  process.stderr.write('usage: baseline-server.js <cert> <key> <port>\n');
  process.exit(64);
}
const log = createLogger({ level: 'info', name: 'bench-baseline' });
const notifier = createNotifier(readRuntimeEnv('UNUSED').notify, log);
const app = fastify({ https: { cert: readFileSync(cert), key: readFileSync(key) } });
app.get('/health', async () => ({ status: 'ok' }));
if (bodyFile) {
  const body = readFileSync(bodyFile);
  app.get('/body', async (_req, reply) => reply.type('application/json; charset=utf-8').send(body));
}
await app.listen({ host: '127.0.0.1', port: Number(port) });
notifier.ready(`listening on ${port}`);

const stop = () => {
  notifier.stopping();
  void app.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
