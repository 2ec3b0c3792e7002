import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendProblem } from '../../lib/http-problem.js';

/**
 * Who may call an admin route. `deployment-manager`: the certificate named so. `operator`: any
 * other client in `admin.allowed_clients` (fortctl, a metrics scraper with its own name).
 */
export type AdminRole = 'operator' | 'deployment-manager';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Every admin route declares this; see enforceRoles. */
    roles?: readonly AdminRole[];
  }
}

const DM = 'deployment-manager';
const declare = <const R extends readonly AdminRole[]>(...roles: R) => ({ config: { roles } });

/** Route options that declare who may call the route. */
export const OPERATOR_ONLY = declare('operator');
export const DEPLOYMENT_MANAGER_ONLY = declare(DM);
export const OPERATOR_OR_DEPLOYMENT_MANAGER = declare('operator', DM);

export const roleOf = (peerName: string): AdminRole => (peerName === DM ? DM : 'operator');

const describeRoles = (roles: readonly AdminRole[]) =>
  roles.map((r) => (r === DM ? 'the deployment manager' : 'operators (fortctl)')).join(' and ');

/**
 * Fails closed twice: a route registered without `config.roles` stops the server from starting,
 * and a request to a route without them (or whose peer lacks the role) gets 403. Add it after
 * the hook that sets `req.peer` and before any route.
 */
export function enforceRoles(app: FastifyInstance) {
  app.addHook('onRoute', (route) => {
    if (!route.config?.roles?.length)
      throw new Error(`admin route ${String(route.method)} ${route.url} declares no roles (config.roles)`);
  });
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (req.is404) return; // no route: the not-found handler answers
    const roles = req.routeOptions.config.roles ?? [];
    const peer = req.peer?.name;
    if (peer !== undefined && roles.includes(roleOf(peer))) return;
    const detail = roles.length
      ? `${req.method} ${req.routeOptions.url} is for ${describeRoles(roles)} only, not ${peer ?? 'an unknown peer'}`
      : `${req.method} ${req.routeOptions.url} declares no roles`;
    req.log.warn({ reason: detail }, 'admin request refused');
    return sendProblem(reply, 'FORT_ERR_FORBIDDEN', detail);
  });
}
