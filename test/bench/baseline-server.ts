#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { fastify, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { createLogger } from '../../lib/logger.js';
import { createNotifier } from '../../lib/sd-notify.js';
import { readRuntimeEnv } from '../../lib/runtime-env.js';
import { createClientApiServer } from '../../agent/api/plumbing.js';
import { userTokenVerifier } from '../../agent/api/data-deps.js';
import { appAccess } from '../../agent/api/app-access.js';
import type { ApiConfig } from '../../agent/api/config.js';
import { createAuthorizer } from '../../agent/cloud/authorizer.js';
import { openAuditStore } from '../../agent/audit/store.js';
import { createAuditWriter, type AuditWriter } from '../../agent/audit/writer.js';
import type { AppCatalog } from '../../agent/apps/catalog.js';

/**
 * Bench baselines: the least a Node HTTPS service can do, then the client API's layers one by
 * one. Usage:
 *   baseline-server.js <cert> <key> <port> [body.json [--layers=<layer> <layers.json>]]
 * GET /body answers exactly the body file's bytes (what the agent would send). Layers add up,
 * each the agent's own module, so the difference between two runs is what one layer costs:
 *   plumbing  the client API's server (request ids, security headers, CORS, both rate limits);
 *   token     + the user-token check (cached verification, as the agent after the first request);
 *   authz     + the cloud decision (cached), asked as every data route asks it;
 *   audit     + the audit entry of that decision, in the agent's SQLite audit store.
 * layers.json: { auth: <[api.auth] as parsed>, fortId, jwks: <the keys>, auditPath: <file> }.
 */
const LAYERS = ['bare', 'plumbing', 'token', 'authz', 'audit'] as const;
const [cert, key, port, bodyFile, layerArg, layersFile] = process.argv.slice(2);
const layer = LAYERS.indexOf((layerArg?.replace('--layers=', '') ?? 'bare') as (typeof LAYERS)[number]);
if (!cert || !key || !port || layer < 0 || (layer > 0 && !bodyFile) || (layer > 1 && !layersFile)) {
  process.stderr.write(
    `usage: baseline-server.js <cert> <key> <port> [body.json [--layers=${LAYERS.join('|')} <layers.json>]]\n`,
  );
  process.exit(64);
}
const log = createLogger({ level: 'info', name: 'bench-baseline' });
const notifier = createNotifier(readRuntimeEnv('UNUSED').notify, log);
const tls = { cert: readFileSync(cert), key: readFileSync(key) };
const body = bodyFile ? readFileSync(bodyFile) : Buffer.from('{"status":"ok"}');
const send = (reply: FastifyReply) => reply.type('application/json; charset=utf-8').send(body);

let app: FastifyInstance;
if (layer === 0) {
  app = fastify({ https: tls });
  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/body', async (_req, reply) => send(reply));
} else {
  const server = await createClientApiServer(
    {
      cors_origins: ['https://hub.example'],
      rate_limit: { per_ip_per_minute: 1_000_000, per_user_per_minute: 1_000_000 },
    },
    tls,
    log,
  );
  const setup = layer > 1 ? (JSON.parse(readFileSync(layersFile!, 'utf8')) as LayersFile) : undefined;
  const verify = setup && userTokenVerifier(setup.auth, createLocalJWKSet(setup.jwks), setup.fortId);
  const access = setup && layer > 2 ? accessOf(setup) : undefined;
  await server.app.register(async (scope) => {
    scope.addHook('onRequest', async (req) => {
      req.identity = verify ? await verify(req.headers.authorization, false) : { user: 'alice', tenant: 't1' };
    });
    scope.addHook('preHandler', server.perUser);
    scope.get('/body', async (req: FastifyRequest, reply: FastifyReply) => {
      if (access && !(await access.allowed(req, reply, 'app.read', 'sales'))) return reply;
      return send(reply);
    });
  });
  app = server.app as unknown as FastifyInstance;
}
await app.listen({ host: '127.0.0.1', port: Number(port) });
notifier.ready(`listening on ${port}`);

interface LayersFile {
  auth: NonNullable<ApiConfig['auth']>;
  fortId: string;
  jwks: JSONWebKeySet;
  auditPath: string;
}

/** The agent's authorisation step: a decision cached after the first ask, and audited from the audit layer on. */
function accessOf(setup: LayersFile) {
  const authorizer = createAuthorizer({ ask: async () => ({ allow: true, ttl: 3600 }), maxEntries: 1000, log });
  const audit: AuditWriter =
    layer > 3
      ? createAuditWriter({ db: openAuditStore({ path: setup.auditPath, retentionDays: 30, log }).db, log })
      : { write: () => {}, flush: () => {}, close: () => {} };
  return appAccess({ catalog: {} as AppCatalog, authorizer, audit });
}

const stop = () => {
  notifier.stopping();
  void app.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
