import { z } from 'zod';
import { sendRawProblem, issueDetail } from '../../lib/http-problem.js';
import { identifier } from '../../lib/config/fields.js';
import { problemErrorHandler } from '../cloud-api/problems.js';
import type { DevCloudServer } from '../server.js';
import type { ReloadScheduler } from './scheduler.js';
import type { ReloadStatusLog } from './status-log.js';

const listQuery = z.strictObject({
  fort: identifier().optional(),
  app: identifier().optional(),
  since: z.iso.datetime({ offset: true, error: 'expected an ISO 8601 time' }).optional(),
});
const triggerBody = z.strictObject({ fort: identifier(), app: identifier() });

/**
 * Developer-only routes of the reload scheduler (CLOUD-API.md "Reload scheduling"): what forts
 * reported, and a reload requested now. A real cloud has its own UI and API for this.
 */
export async function registerReloadRoutes(
  app: DevCloudServer,
  deps: { scheduler: ReloadScheduler; statusLog: ReloadStatusLog },
) {
  await app.register(async (scope) => {
    scope.setErrorHandler(problemErrorHandler);

    scope.get('/dev/v1/reloads', async (req, reply) => {
      const q = listQuery.safeParse(req.query);
      if (!q.success) return sendRawProblem(reply, 400, 'FORT_ERR_BAD_REQUEST', 'Bad request', issueDetail(q.error));
      const { fort, app: appId, since } = q.data;
      return reply.header('cache-control', 'no-store').send(
        deps.statusLog.list({
          ...(fort ? { fortId: fort } : {}),
          ...(appId ? { appId } : {}),
          ...(since ? { since: new Date(since) } : {}),
        }),
      );
    });

    scope.post('/dev/v1/reloads', async (req, reply) => {
      const body = triggerBody.safeParse(req.body);
      if (!body.success)
        return sendRawProblem(reply, 400, 'FORT_ERR_BAD_REQUEST', 'Bad request', issueDetail(body.error));
      return reply.send(await deps.scheduler.trigger(body.data.fort, body.data.app));
    });
  });
}
