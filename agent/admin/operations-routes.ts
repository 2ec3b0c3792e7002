import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { sendProblem, sendBadRequest } from '../../lib/http-problem.js';
import { TlsMaterialError } from '../../lib/errors.js';
import type { CertificateReport, ServedCertificate } from '../../lib/admin-client.js';
import type { HealthRegistry } from '../health.js';
import type { AuditReader } from '../audit/reader.js';
import type { DeadLetterReader } from '../events/dead-letters.js';
import type { AgentMetrics } from '../metrics.js';
import { OPERATOR_ONLY, OPERATOR_OR_DEPLOYMENT_MANAGER } from './roles.js';
import type { TemporaryLevel } from '../../lib/log-level.js';

export interface AdminOperationsDeps {
  health: HealthRegistry;
  info: () => { version: string; fortId: string; schemaVersion: number; startedAt: Date };
  /** Stop taking work, finish in-flight, exit 0 so systemd starts the (new) release. */
  drain: (requestedBy: string) => void;
  /** Read side of the audit table, for `GET /admin/v1/audit`. */
  audit: AuditReader;
  /** Dead-lettered events, newest first (`fortctl events dead`). */
  deadLetters?: DeadLetterReader;
  /** Expiry of every certificate the agent uses (`fortctl certs check`). */
  certificates?: () => CertificateReport[];
  /** Reads the TLS servers' certificates again and serves them (`fortctl reload-certs`, as SIGHUP does). */
  reloadCerts?: (requestedBy: string) => ServedCertificate[];
  /** `GET /admin/v1/metrics`; the admin API's own requests are counted in it too. */
  metrics?: AgentMetrics;
  /** A log level asked of the deployment manager: told with every health answer (it has no listener). */
  deploymentManagerLevel?: () => TemporaryLevel | undefined;
  now?: () => Date;
}

/** A `limit` query parameter: how many entries, 1..1000. */
const limitParam = (byDefault: number) =>
  z.coerce
    .number({ error: 'expected a number' })
    .int({ error: 'expected an integer 1..1000' })
    .min(1, { error: 'expected an integer 1..1000' })
    .max(1000, { error: 'expected an integer 1..1000' })
    .default(byDefault);

/** `GET /admin/v1/audit?since=<ISO time with offset or Z>&limit=<1..1000, default 200>` */
export const auditQuerySchema = z.object({
  since: z.iso.datetime({
    offset: true,
    error: 'expected an ISO 8601 time with Z or an offset, e.g. 2024-05-01T12:00:00Z',
  }),
  limit: limitParam(200),
});

const deadQuerySchema = z.object({
  limit: limitParam(50),
});

const logLevelsOf = (dm: TemporaryLevel | undefined) => (dm ? { logLevels: { 'deployment-manager': dm } } : {});

/** Health, version and drain (the deployment manager's update flow uses them too), and the operator's views. */
export function registerOperationsRoutes(app: FastifyInstance, deps: AdminOperationsDeps) {
  const now = deps.now ?? (() => new Date());
  app.get('/admin/v1/health', OPERATOR_OR_DEPLOYMENT_MANAGER, async (_req, reply) => {
    const snap = deps.health.snapshot();
    const info = deps.info();
    const status = snap.draining
      ? 'draining'
      : snap.ready
        ? snap.degraded
          ? 'degraded'
          : 'healthy'
        : snap.live
          ? 'starting'
          : 'unhealthy';
    return reply.code(snap.ready ? 200 : 503).send({
      status,
      live: snap.live,
      ready: snap.ready,
      version: info.version,
      fortId: info.fortId,
      uptimeSeconds: Math.round((now().getTime() - info.startedAt.getTime()) / 1000),
      modules: snap.modules,
      ...logLevelsOf(deps.deploymentManagerLevel?.()),
    });
  });

  app.get('/admin/v1/version', OPERATOR_OR_DEPLOYMENT_MANAGER, async () => {
    const info = deps.info();
    return {
      version: info.version,
      node: process.version,
      fortId: info.fortId,
      schemaVersion: info.schemaVersion,
      startedAt: info.startedAt.toISOString(),
    };
  });

  app.post('/admin/v1/drain', OPERATOR_OR_DEPLOYMENT_MANAGER, async (req, reply) => {
    const by = req.peer?.name ?? 'unknown';
    req.log.info({ by }, 'drain requested');
    reply.code(202).send({ status: 'draining' });
    // After the reply is flushed: the caller learns the drain was accepted before we exit.
    setImmediate(() => deps.drain(by));
    return reply;
  });

  app.get('/admin/v1/audit', OPERATOR_ONLY, async (req, reply) => {
    const query = auditQuerySchema.safeParse(req.query);
    if (!query.success) return sendBadRequest(reply, query.error, 'query');
    return { entries: deps.audit.since(new Date(query.data.since), query.data.limit) };
  });

  const dead = deps.deadLetters;
  if (dead) {
    app.get('/admin/v1/events/dead', OPERATOR_ONLY, async (req, reply) => {
      const q = deadQuerySchema.safeParse(req.query);
      if (!q.success) return sendBadRequest(reply, q.error, 'query');
      return { deadLetters: dead.list(q.data.limit) };
    });
  }

  const certificates = deps.certificates;
  if (certificates) app.get('/admin/v1/certs', OPERATOR_ONLY, async () => ({ certificates: certificates() }));

  const reloadCerts = deps.reloadCerts;
  if (reloadCerts) {
    app.post('/admin/v1/reload-certs', OPERATOR_ONLY, async (req, reply) => {
      try {
        return { served: reloadCerts(req.peer?.name ?? 'unknown') };
      } catch (err) {
        // Names the file and what is wrong with it; nothing was swapped.
        if (err instanceof TlsMaterialError)
          return sendProblem(reply, err, `${err.message}; still serving the previous certificates`);
        throw err;
      }
    });
  }

  const metrics = deps.metrics;
  if (metrics) {
    app.get('/admin/v1/metrics', OPERATOR_ONLY, async (_req, reply) => {
      const { contentType, text } = await metrics.scrape();
      return reply.type(contentType).send(text);
    });
  }
}
