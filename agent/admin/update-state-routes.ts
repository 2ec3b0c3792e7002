import type { FastifyInstance } from 'fastify';
import { sendBadRequest } from '../../lib/http-problem.js';
import { DEPLOYMENT_MANAGER_ONLY, OPERATOR_ONLY } from './roles.js';
import { updateSummarySchema } from '../../lib/update-state.js';
import type { UpdateStateHolder } from '../update-state.js';

/**
 * `PUT /admin/v1/update-state` (the deployment manager only) and `GET` (fortctl update status):
 * the agent cannot see the update state machine, which runs as another user.
 */
export function registerUpdateStateRoutes(app: FastifyInstance, holder: UpdateStateHolder) {
  app.put('/admin/v1/update-state', { ...DEPLOYMENT_MANAGER_ONLY, bodyLimit: 8 * 1024 }, async (req, reply) => {
    const body = updateSummarySchema.safeParse(req.body);
    if (!body.success) return sendBadRequest(reply, body.error);
    holder.set(body.data);
    return reply.code(204).send();
  });
  app.get('/admin/v1/update-state', OPERATOR_ONLY, async () => holder.get());
}
