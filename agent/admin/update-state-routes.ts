import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { sendBadRequest } from '../../lib/http-problem.js';
import { DEPLOYMENT_MANAGER_ONLY, OPERATOR_ONLY } from './roles.js';
import { UPDATE_STEPS } from '../../lib/update-summary.js';
import type { UpdateStateHolder } from '../update-state.js';

const text = (max: number) => z.string().max(max);
const version = text(128).nullable();

/** Unknown fields are dropped, not refused: a deployment manager of a newer release may send more. */
const updateStateBody = z.object({
  step: z.enum(UPDATE_STEPS),
  installed: version,
  installedArtifact: version,
  previous: version,
  deployment: z
    .object({
      id: text(256),
      artifactName: text(256),
      source: text(32),
      downloaded: z.int().nonnegative(),
      target: version,
      deadline: text(64).nullable(),
      reason: text(2048).nullable(),
    })
    .nullable(),
  lastError: text(2048).nullable(),
  updatedAt: z.iso.datetime({ offset: true }),
});

/**
 * `PUT /admin/v1/update-state` (the deployment manager only) and `GET` (fortctl update status):
 * the agent cannot see the update state machine, which runs as another user.
 */
export function registerUpdateStateRoutes(app: FastifyInstance, holder: UpdateStateHolder) {
  app.put('/admin/v1/update-state', { ...DEPLOYMENT_MANAGER_ONLY, bodyLimit: 8 * 1024 }, async (req, reply) => {
    const body = updateStateBody.safeParse(req.body);
    if (!body.success) return sendBadRequest(reply, body.error);
    holder.set(body.data);
    return reply.code(204).send();
  });
  app.get('/admin/v1/update-state', OPERATOR_ONLY, async () => holder.get());
}
