import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { sendProblem } from '../../lib/http-problem.js';
import { AuthorizationUnavailableError, type Authorizer } from '../cloud/authorizer.js';
import type { AppCatalog, AppSummary } from '../apps/catalog.js';
import type { VersionReader } from '../apps/version-reader.js';
import type { PageCache } from '../apps/page-cache.js';
import { NotFoundError } from '../apps/errors.js';
import type { AuditWriter } from '../audit/writer.js';
import type { UserIdentity } from './user-token.js';
import { appAccess, parse } from './app-access.js';
import type { EngineRows } from './query-routes.js';

export interface AppsRoutesDeps {
  catalog: AppCatalog;
  reader: VersionReader;
  pages: PageCache;
  authorizer: Authorizer;
  audit: AuditWriter;
  /** Rows of a version fort-engine keeps (query-routes.ts); absent without an engine. */
  engineRows?: EngineRows | undefined;
  /** Queues (or joins) a reload; throws NotFoundError for an unknown app. */
  reloads: {
    request(
      appId: string,
      source: string,
    ): { reload: { id: string; appId: string; state: string }; coalesced: boolean };
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    identity?: UserIdentity;
  }
}

const appParams = z.strictObject({ id: z.string().min(1).max(128) });
const rowsParams = appParams.extend({ table: z.string().min(1).max(128) });
const rowsQuery = z.strictObject({
  offset: z.coerce.number().int().min(0).max(1_000_000_000).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const appView = (a: AppSummary) => ({
  id: a.id,
  name: a.name,
  space: a.space,
  updatedAt: a.updatedAt,
  hasData: a.versionId !== null,
});

/** `/api/v1/apps...`: every route asks the cloud (cached) before it touches data; all decisions audited. */
export function registerAppsRoutes(app: FastifyInstance, deps: AppsRoutesDeps) {
  const { catalog, reader, pages, authorizer, audit } = deps;
  const { refuseUnavailable, allowed, existing } = appAccess(deps);

  app.get('/api/v1/apps', async (req, reply) => {
    const who = req.identity!;
    const apps = catalog.list();
    let decisions;
    try {
      decisions = await Promise.all(
        apps.map((a) => authorizer.decide({ user: who.user, tenant: who.tenant, action: 'app.list', resource: a.id })),
      );
    } catch (err) {
      if (!(err instanceof AuthorizationUnavailableError)) throw err;
      return refuseUnavailable(req, reply, 'app.list', '*');
    }
    const visible = apps.filter((_, i) => decisions[i]!.allow);
    audit.write({
      actor: who.user,
      action: 'app.list',
      target: '*',
      detail: { decision: 'allow', shown: visible.length, hidden: apps.length - visible.length, requestId: req.id },
    });
    return { apps: visible.map(appView) };
  });

  app.get('/api/v1/apps/:id', async (req, reply) => {
    const p = parse(appParams, req.params, reply);
    if (!p || !(await allowed(req, reply, 'app.read', p.id))) return reply;
    const a = existing(reply, p.id);
    return a ? appView(a) : reply;
  });

  app.get('/api/v1/apps/:id/tables', async (req, reply) => {
    const p = parse(appParams, req.params, reply);
    if (!p || !(await allowed(req, reply, 'app.read', p.id))) return reply;
    if (!existing(reply, p.id)) return reply;
    const inEngine = catalog.currentEngineVersion(p.id);
    if (inEngine) return { tables: inEngine.tables.map((t) => ({ name: t.name, rowCount: t.rows })) };
    const file = catalog.currentVersionFile(p.id);
    return { tables: file ? reader.tables(file) : [] };
  });

  app.get('/api/v1/apps/:id/tables/:table/rows', async (req, reply) => {
    const p = parse(rowsParams, req.params, reply);
    const inEngine = p && catalog.currentEngineVersion(p.id);
    // A version the engine keeps is paged by keyset (its own parameters, checked there).
    if (p && inEngine && deps.engineRows) {
      if (!(await allowed(req, reply, 'app.read', p.id)) || !existing(reply, p.id)) return reply;
      return deps.engineRows(reply, p.id, inEngine, p.table, req.query);
    }
    const q = p && parse(rowsQuery, req.query, reply);
    if (!p || !q || !(await allowed(req, reply, 'app.read', p.id))) return reply;
    if (!existing(reply, p.id)) return reply;
    const file = catalog.currentVersionFile(p.id);
    // An app without data yet has no tables: its (any) table reads as empty rather than 404.
    if (!file) return { columns: [], rows: [], offset: q.offset, limit: q.limit, total: 0 };
    let body: Buffer;
    try {
      body = pages.json(file, p.table, q.offset, q.limit);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      return sendProblem(reply, 'FORT_ERR_NOT_FOUND', `app ${p.id} has no table ${p.table}`);
    }
    return reply.type('application/json; charset=utf-8').send(body);
  });

  app.post('/api/v1/apps/:id/reloads', async (req, reply) => {
    const p = parse(appParams, req.params, reply);
    if (!p || !(await allowed(req, reply, 'app.reload', p.id))) return reply;
    if (!existing(reply, p.id)) return reply;
    const { reload, coalesced } = deps.reloads.request(p.id, `user:${req.identity!.user}`);
    return reply.code(202).send({ reload: { id: reload.id, appId: reload.appId, state: reload.state }, coalesced });
  });
}
