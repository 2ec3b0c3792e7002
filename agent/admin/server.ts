import Fastify, { LogController } from 'fastify';
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';
import type { Logger } from '../../lib/logger.js';
import { TLS_MIN_VERSION, type TlsMaterial } from '../../lib/tls.js';
import { sendProblem, sendBadRequest } from '../../lib/http-problem.js';
import type { HealthRegistry } from '../health.js';
import type { AuditReader } from '../audit/reader.js';
import { registerReloadRoutes, type AdminReloadsDeps } from './reload-routes.js';
import { registerPairingRoutes, type AdminPairingDeps } from './pairing-routes.js';
import type { CertificateReport, ServedCertificate } from '../../lib/admin-client.js';
import type { DeadLetterReader } from '../events/dead-letters.js';
import { requestObserver, type AgentMetrics } from '../metrics.js';
import type { UpdateStateHolder } from '../update-state.js';
import { registerUpdateStateRoutes } from './update-state-routes.js';
import { TlsMaterialError } from '../../lib/errors.js';
import { listenWithoutInterfaces } from '../api/listen.js';
import { authorizePeer, operatorOnly, type PeerIdentity } from './peer.js';

export interface AdminServerDeps {
  host: string;
  port: number;
  tls: TlsMaterial;
  allowedClients: readonly string[];
  health: HealthRegistry;
  info: () => { version: string; fortId: string; schemaVersion: number; startedAt: Date };
  /** Stop taking work, finish in-flight, exit 0 so systemd starts the (new) release. */
  drain: (requestedBy: string) => void;
  /** Read side of the audit table, for `GET /admin/v1/audit`. */
  audit: AuditReader;
  /** Apps and reloads; absent in tests of the admin API alone. */
  reloads?: AdminReloadsDeps;
  /** fortctl pair; absent in tests of the admin API alone. */
  pairing?: AdminPairingDeps;
  /** Dead-lettered events, newest first (`fortctl events dead`). */
  deadLetters?: DeadLetterReader;
  /** Expiry of every certificate the agent uses (`fortctl certs check`). */
  certificates?: () => CertificateReport[];
  /** Reads the TLS servers' certificates again and serves them (`fortctl reload-certs`, as SIGHUP does). */
  reloadCerts?: (requestedBy: string) => ServedCertificate[];
  /** `GET /admin/v1/metrics`; this API's own requests are counted in it too. */
  metrics?: AgentMetrics;
  /** What the deployment manager reports of its update state. */
  updateState?: UpdateStateHolder;
  log: Logger;
  now?: () => Date;
}

/** `GET /admin/v1/audit?since=<ISO time with offset or Z>&limit=<1..1000, default 200>` */
export const auditQuerySchema = z.object({
  since: z.iso.datetime({ offset: true, error: 'expected an ISO 8601 time with Z or an offset, e.g. 2024-05-01T12:00:00Z' }),
  limit: z.coerce
    .number({ error: 'expected a number' })
    .int({ error: 'expected an integer 1..1000' })
    .min(1, { error: 'expected an integer 1..1000' })
    .max(1000, { error: 'expected an integer 1..1000' })
    .default(200),
});

const deadQuerySchema = z.object({
  limit: z.coerce.number({ error: 'expected a number' }).int({ error: 'expected an integer 1..1000' }).min(1, { error: 'expected an integer 1..1000' }).max(1000, { error: 'expected an integer 1..1000' }).default(50),
});

declare module 'fastify' {
  interface FastifyRequest {
    peer?: PeerIdentity;
  }
}

/** Trust-zone admin API: mutual TLS with the installation's root CA only, then a role check. */
export async function startAdminServer(deps: AdminServerDeps) {
  const now = deps.now ?? (() => new Date());
  const allowed = new Set(deps.allowedClients);
  const app = Fastify({
    loggerInstance: deps.log,
    // Health polls every few seconds would drown the journal; refusals are logged below.
    // (A LogController: the top-level disableRequestLogging is deprecated, FSTDEP023.)
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    https: {
      key: deps.tls.key,
      cert: deps.tls.cert,
      ca: deps.tls.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: TLS_MIN_VERSION,
    },
  });

  if (deps.metrics) app.addHook('onResponse', requestObserver('admin', deps.metrics));
  app.addHook('onRequest', async (req, reply) => {
    const decision = authorizePeer(req.raw.socket as TLSSocket, allowed);
    if (!decision.ok) {
      req.log.warn({ reason: decision.reason }, 'admin request refused');
      return sendProblem(reply, 403, 'FORT_ERR_FORBIDDEN', 'Forbidden', decision.reason);
    }
    req.peer = decision.peer;
  });

  app.get('/admin/v1/health', async (_req, reply) => {
    const snap = deps.health.snapshot();
    const info = deps.info();
    const status = snap.draining ? 'draining' : snap.ready ? (snap.degraded ? 'degraded' : 'healthy') : snap.live ? 'starting' : 'unhealthy';
    return reply.code(snap.ready ? 200 : 503).send({
      status,
      live: snap.live,
      ready: snap.ready,
      version: info.version,
      fortId: info.fortId,
      uptimeSeconds: Math.round((now().getTime() - info.startedAt.getTime()) / 1000),
      modules: snap.modules,
    });
  });

  app.get('/admin/v1/version', async () => {
    const info = deps.info();
    return { version: info.version, node: process.version, fortId: info.fortId, schemaVersion: info.schemaVersion, startedAt: info.startedAt.toISOString() };
  });

  app.post('/admin/v1/drain', async (req, reply) => {
    const by = req.peer?.name ?? 'unknown';
    req.log.info({ by }, 'drain requested');
    reply.code(202).send({ status: 'draining' });
    // After the reply is flushed: the caller learns the drain was accepted before we exit.
    setImmediate(() => deps.drain(by));
    return reply;
  });

  app.get('/admin/v1/audit', async (req, reply) => {
    const query = auditQuerySchema.safeParse(req.query);
    if (!query.success) return sendBadRequest(reply, query.error, 'query');
    return { entries: deps.audit.since(new Date(query.data.since), query.data.limit) };
  });

  const dead = deps.deadLetters;
  if (dead) {
    app.get('/admin/v1/events/dead', async (req, reply) => {
      const q = deadQuerySchema.safeParse(req.query);
      if (!q.success) return sendBadRequest(reply, q.error, 'query');
      return { deadLetters: dead.list(q.data.limit) };
    });
  }

  const certificates = deps.certificates;
  if (certificates) app.get('/admin/v1/certs', async () => ({ certificates: certificates() }));

  const reloadCerts = deps.reloadCerts;
  if (reloadCerts) {
    app.post('/admin/v1/reload-certs', async (req, reply) => {
      if (!operatorOnly(req, reply, 'reloading certificates')) return reply;
      try {
        return { served: reloadCerts(req.peer?.name ?? 'unknown') };
      } catch (err) {
        // Names the file and what is wrong with it; nothing was swapped.
        if (err instanceof TlsMaterialError) return sendProblem(reply, 422, err.code, 'Certificates not reloaded', `${err.message}; still serving the previous certificates`);
        throw err;
      }
    });
  }

  const metrics = deps.metrics;
  if (metrics) {
    app.get('/admin/v1/metrics', async (_req, reply) => {
      const { contentType, text } = await metrics.scrape();
      return reply.type(contentType).send(text);
    });
  }
  const updateState = deps.updateState;
  if (updateState) await app.register(async (scope) => registerUpdateStateRoutes(scope, updateState));

  const reloads = deps.reloads;
  if (reloads) await app.register(async (scope) => registerReloadRoutes(scope, reloads));
  const pairing = deps.pairing;
  if (pairing) await app.register(async (scope) => registerPairingRoutes(scope, pairing));

  app.setNotFoundHandler((req, reply) => sendProblem(reply, 404, 'FORT_ERR_NOT_FOUND', 'Not found', `${req.method} ${req.url}`));

  await listenWithoutInterfaces(app, deps.host, deps.port, 'admin API');
  return app;
}
