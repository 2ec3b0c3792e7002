import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { FortError } from '../../lib/errors.js';
import { sendProblem, sendBadRequest } from '../../lib/http-problem.js';
import { identifier } from '../../lib/config/fields.js';
import { NotFoundError } from '../apps/errors.js';
import type { Reload, CancelResult } from '../reloads/queue.js';
import { OPERATOR_ONLY } from './roles.js';

/** What the admin API needs of apps and reloads (agent/reloads/service.ts provides it). */
export interface AdminReloadsDeps {
  registerApp(
    text: string,
    format: 'toml' | 'json',
    by: string,
  ): Promise<{ app: { id: string; name: string; space: string }; created: boolean }>;
  listApps(): unknown[];
  listReloads(filter: { appId?: string; state?: Reload['state']; limit?: number }): Reload[];
  requestReload(appId: string, source: string): { reload: Reload; coalesced: boolean };
  cancelReload(target: { reloadId: string } | { appId: string }): { result: CancelResult };
}

/** App definitions up to 256 KiB (UTF-8). */
const MAX_DEFINITION = 256 * 1024;
/**
 * The JSON body that carries one: escaping (quotes, backslashes, line breaks) may double it,
 * and the API-wide 64 KiB would refuse most long definitions with a bare 413.
 */
const APPS_BODY_LIMIT = 2 * MAX_DEFINITION + 4 * 1024;
const addBody = z.strictObject({ format: z.enum(['toml', 'json']), definition: z.string().min(1) });
const listQuery = z.strictObject({
  app: identifier().optional(),
  state: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
});
const startBody = z.strictObject({ appId: identifier() });
const cancelParams = z.strictObject({ id: z.uuid() });

/**
 * Operator routes (trust zone only): apps are registered here and nowhere else — never by a
 * cloud event — and reloads can be listed, started and cancelled.
 */
export function registerReloadRoutes(app: FastifyInstance, deps: AdminReloadsDeps) {
  app.post('/admin/v1/apps', { ...OPERATOR_ONLY, bodyLimit: APPS_BODY_LIMIT }, async (req, reply) => {
    const body = addBody.safeParse(req.body);
    if (!body.success) return sendBadRequest(reply, body.error);
    const size = Buffer.byteLength(body.data.definition);
    if (size > MAX_DEFINITION)
      return sendProblem(
        reply,
        'FORT_ERR_TOO_LARGE',
        `definition: ${size} bytes; app definitions are limited to ${MAX_DEFINITION} bytes (256 KiB)`,
      );
    try {
      const r = await deps.registerApp(body.data.definition, body.data.format, req.peer?.name ?? 'unknown');
      req.log.info({ appId: r.app.id, created: r.created, by: req.peer?.name }, 'app registered');
      return reply.code(r.created ? 201 : 200).send(r);
    } catch (err) {
      if (err instanceof FortError && err.code === 'FORT_ERR_DEFINITION') return sendProblem(reply, err);
      throw err;
    }
  });

  app.get('/admin/v1/apps', OPERATOR_ONLY, async () => ({ apps: deps.listApps() }));

  app.get('/admin/v1/reloads', OPERATOR_ONLY, async (req, reply) => {
    const q = listQuery.safeParse(req.query);
    if (!q.success) return sendBadRequest(reply, q.error);
    return {
      reloads: deps.listReloads({
        ...(q.data.app ? { appId: q.data.app } : {}),
        ...(q.data.state ? { state: q.data.state } : {}),
        limit: q.data.limit,
      }),
    };
  });

  app.post('/admin/v1/reloads', OPERATOR_ONLY, async (req, reply) => {
    const body = startBody.safeParse(req.body);
    if (!body.success) return sendBadRequest(reply, body.error);
    try {
      return reply.code(202).send(deps.requestReload(body.data.appId, `operator:${req.peer?.name ?? 'unknown'}`));
    } catch (err) {
      if (err instanceof NotFoundError) return sendProblem(reply, err);
      throw err;
    }
  });

  app.post('/admin/v1/reloads/:id/cancel', OPERATOR_ONLY, async (req, reply) => {
    const p = cancelParams.safeParse(req.params);
    if (!p.success) return sendBadRequest(reply, p.error);
    const { result } = deps.cancelReload({ reloadId: p.data.id });
    if (result === 'not_found') return sendProblem(reply, 'FORT_ERR_NOT_FOUND', `no reload ${p.data.id}`);
    if (result === 'finished')
      return sendProblem(reply, 'FORT_ERR_CONFLICT', `reload ${p.data.id} has already finished`);
    return reply.code(202).send({ result });
  });
}
