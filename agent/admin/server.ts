import { registerLogLevelRoutes, type LogLevelRoutesDeps } from './log-level-routes.js';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from '../../lib/logger.js';
import { trustZoneServerTls, type TlsMaterial } from '../../lib/tls.js';
import { frameworkProblem, problemErrorHandler, sendProblem } from '../../lib/http-problem.js';
import { registerReloadRoutes, type AdminReloadsDeps } from './reload-routes.js';
import { registerPairingRoutes, type AdminPairingDeps } from './pairing-routes.js';
import { requestObserver } from '../metrics.js';
import type { UpdateStateHolder } from '../update-state.js';
import { registerUpdateStateRoutes } from './update-state-routes.js';
import { registerOperationsRoutes, type AdminOperationsDeps } from './operations-routes.js';
import { listenWithoutInterfaces } from '../api/listen.js';
import { admitPeer, tlsPeerOf, type PeerIdentity, type PeerSource } from './peer.js';
import { enforceRoles } from './roles.js';

export interface AdminRoutesDeps extends AdminOperationsDeps {
  /** Apps and reloads; absent in tests of the admin API alone. */
  reloads?: AdminReloadsDeps;
  /** fortctl pair; absent in tests of the admin API alone. */
  pairing?: AdminPairingDeps;
  /** What the deployment manager reports of its update state. */
  updateState?: UpdateStateHolder;
  /** `fortctl log-level`; absent in tests of the admin API alone. */
  logLevels?: LogLevelRoutesDeps;
}

export interface AdminApiDeps extends AdminRoutesDeps {
  tls: TlsMaterial;
  allowedClients: readonly string[];
  log: Logger;
  /**
   * Who is calling: by default the TLS peer certificate. inject() has no TLS socket, so route
   * tests name the caller here; without it an injected request has no certificate and gets 403.
   */
  peerOf?: PeerSource;
}

/** The agent's admin API: always the TLS peer certificate. */
export interface AdminServerDeps extends Omit<AdminApiDeps, 'peerOf'> {
  host: string;
  port: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    peer?: PeerIdentity;
  }
}

/** Every admin route, each declaring the roles that may call it (enforceRoles refuses the rest). */
export function registerAdminRoutes(app: FastifyInstance, deps: AdminRoutesDeps) {
  enforceRoles(app);
  registerOperationsRoutes(app, deps);
  if (deps.updateState) registerUpdateStateRoutes(app, deps.updateState);
  if (deps.reloads) registerReloadRoutes(app, deps.reloads);
  if (deps.pairing) registerPairingRoutes(app, deps.pairing);
  if (deps.logLevels) registerLogLevelRoutes(app, deps.logLevels);
}

/**
 * The admin API with every hook and route, not yet listening: startAdminServer binds it, and the
 * route tests drive it in-process with `inject()`.
 */
export async function buildAdminApi(deps: AdminApiDeps) {
  const allowed = new Set(deps.allowedClients);
  const peerOf = deps.peerOf ?? tlsPeerOf;
  const app = Fastify({
    loggerInstance: deps.log,
    // Health polls every few seconds would drown the journal; refusals are logged below.
    // (A LogController: the top-level disableRequestLogging is deprecated, FSTDEP023.)
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    https: trustZoneServerTls(deps.tls),
    // Refused by the router before any hook (a path that is not valid percent-encoding): a problem too.
    frameworkErrors: frameworkProblem,
  });

  if (deps.metrics) app.addHook('onResponse', requestObserver('admin', deps.metrics));
  // On the root: unknown paths too are answered only to an allowed peer.
  app.addHook('onRequest', async (req, reply) => {
    const decision = admitPeer(peerOf(req), allowed);
    if (!decision.ok) {
      req.log.warn({ reason: decision.reason }, 'admin request refused');
      return sendProblem(reply, 'FORT_ERR_FORBIDDEN', decision.reason);
    }
    req.peer = decision.peer;
  });
  app.setErrorHandler(problemErrorHandler('admin API'));
  await app.register(async (scope) => registerAdminRoutes(scope, deps));
  app.setNotFoundHandler((req, reply) => sendProblem(reply, 'FORT_ERR_NOT_FOUND', `${req.method} ${req.url}`));
  return app;
}

/** Trust-zone admin API: mutual TLS with the installation's root CA only, then the route's roles. */
export async function startAdminServer(deps: AdminServerDeps) {
  const { host, port, ...api } = deps;
  const app = await buildAdminApi({ ...api, peerOf: tlsPeerOf });
  await listenWithoutInterfaces(app, host, port, 'admin API');
  return app;
}
