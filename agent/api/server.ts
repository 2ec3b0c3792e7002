import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../lib/logger.js';
import type { TlsMaterial } from '../../lib/tls.js';
import { problemErrorHandler, sendProblem } from '../../lib/http-problem.js';
import type { ApiConfig } from './config.js';
import { registerAppsRoutes, type AppsRoutesDeps } from './apps-routes.js';
import { registerQueryRoutes, type QueryRoutesDeps } from './query-routes.js';
import { openApiDocument } from './openapi.js';
import { TokenRejectedError, type UserTokenVerifier } from './user-token.js';
import type { DenialCounter } from '../audit/denials.js';
import { VIEWER_CSS, VIEWER_JS, viewerHtml } from './viewer-page.js';
import { PAGE_HEADERS } from './security-headers.js';
import { createClientApiServer } from './plumbing.js';
import { listenWithoutInterfaces } from './listen.js';
import { requestObserver, type MetricsRecorder } from '../metrics.js';

export interface ClientApiDeps {
  config: ApiConfig;
  /** Client-zone certificate: browsers trust this CA, never the trust-zone root. */
  tls: TlsMaterial;
  isDraining: () => boolean;
  version: string;
  /** This fort's id: the viewer asks the cloud for a token for this fort. */
  fortId?: string;
  /** Absent when [api.auth] / [cloud] are not configured: the data API then answers 503. */
  data?: AppsRoutesDeps &
    Pick<QueryRoutesDeps, 'engine' | 'queryLimits'> & { verifyToken: UserTokenVerifier; denials: DenialCounter };
  metrics?: MetricsRecorder;
  log: Logger;
}

/** The URL without its query string: a token may hide there, so it is never logged or echoed. */
const pathOf = (url: string) => url.split('?')[0]!;

/**
 * The client API with every hook and route, not yet listening: startClientApi binds it, and the
 * route tests drive it in-process with `inject()`.
 */
export async function buildClientApi(deps: ClientApiDeps) {
  const { config } = deps;
  const { app, perUser } = await createClientApiServer(config, deps.tls, deps.log);
  if (deps.metrics) app.addHook('onResponse', requestObserver('client', deps.metrics));
  if (config.access_log) {
    app.addHook('onResponse', async (req, reply) => {
      req.log.info(
        {
          method: req.method,
          path: pathOf(req.url),
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime * 10) / 10,
          user: req.identity?.user,
          ip: req.ip,
        },
        'request',
      );
    });
  }

  const problems = problemErrorHandler('client API');
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err.statusCode === 429)
      return sendProblem(reply, 'FORT_ERR_RATE_LIMITED', 'rate limit exceeded; see retry-after');
    return problems(err, req, reply);
  });

  app.get('/health', async (_req, reply) => {
    if (deps.isDraining()) return sendProblem(reply, 'FORT_ERR_DRAINING', 'the agent is restarting');
    return { status: 'ok' };
  });
  app.get('/', async (_req, reply) =>
    reply
      .headers(PAGE_HEADERS)
      .type('text/html; charset=utf-8')
      .send(viewerHtml({ loginUrl: config.viewer_login_url, tenant: config.auth?.tenant, fortId: deps.fortId })),
  );
  app.get('/viewer.js', async (_req, reply) =>
    reply.headers(PAGE_HEADERS).type('text/javascript; charset=utf-8').send(VIEWER_JS),
  );
  app.get('/viewer.css', async (_req, reply) =>
    reply.headers(PAGE_HEADERS).type('text/css; charset=utf-8').send(VIEWER_CSS),
  );
  const openapi = openApiDocument(deps.version);
  app.get('/api/v1/openapi.json', async () => openapi);

  await app.register(
    async (scope) => {
      const data = deps.data;
      if (!data) {
        // The data routes exist and say why they cannot serve (a hook alone would never run: no route, a 404).
        const notConfigured = async (_req: FastifyRequest, reply: FastifyReply) =>
          sendProblem(
            reply,
            'FORT_ERR_NOT_CONFIGURED',
            'user authentication ([api.auth] and [cloud]) is not configured on this fort',
          );
        for (const url of ['/api/v1/apps', '/api/v1/apps/*'])
          scope.route({ method: ['GET', 'POST'], url, handler: notConfigured });
        return;
      }
      scope.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
        const query = req.query as Record<string, unknown> | undefined;
        try {
          req.identity = await data.verifyToken(
            req.headers.authorization,
            query !== undefined && ('access_token' in query || 'token' in query || 'id_token' in query),
          );
        } catch (err) {
          if (!(err instanceof TokenRejectedError)) throw err;
          // Counted per source and minute (audit row and log line), not one each: see denials.ts.
          data.denials.record({
            ip: req.ip,
            reason: err.reason,
            target: `${req.method} ${pathOf(req.url)}`,
            requestId: req.id,
          });
          if (err.reason === 'jwks_unavailable') {
            // Not the token's fault: a 401 would send the browser to sign in again for nothing.
            return sendProblem(
              reply.header('retry-after', '5'),
              err,
              'the keys that sign user tokens cannot be fetched from the cloud, so no token can be checked; try again shortly',
            );
          }
          reply.header('www-authenticate', `Bearer error="invalid_token", error_description="${err.reason}"`);
          return sendProblem(reply, err);
        }
      });
      scope.addHook('preHandler', perUser);
      const queries = registerQueryRoutes(scope, data);
      registerAppsRoutes(scope, { ...data, ...(data.engine ? { engineRows: queries.rows } : {}) });
    },
    { prefix: '' },
  );

  app.setNotFoundHandler((req, reply) => sendProblem(reply, 'FORT_ERR_NOT_FOUND', `${req.method} ${pathOf(req.url)}`));
  return app;
}

/** Client-zone HTTPS API for browsers on the private network: JWT auth, cloud authz, audit. */
export async function startClientApi(deps: ClientApiDeps) {
  const app = await buildClientApi(deps);
  await listenWithoutInterfaces(app, deps.config.host, deps.config.port, 'client API');
  return app;
}
