import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { FortError } from '../../lib/errors.js';
import { sendProblem } from '../../lib/http-problem.js';
import type { AppCatalog, EngineVersion } from '../apps/catalog.js';
import type { Authorizer } from '../cloud/authorizer.js';
import type { AuditWriter } from '../audit/writer.js';
import type { EngineClient, EngineTable, RelayedAnswer } from '../engine/client.js';
import { appAccess, parse } from './app-access.js';
import { csvExport, type AnswerPage } from './csv-export.js';

export interface QueryRoutesDeps {
  catalog: AppCatalog;
  authorizer: Authorizer;
  audit: AuditWriter;
  /** Absent: the routes answer 503 FORT_ERR_NOT_CONFIGURED (queries are computed by fort-engine only). */
  engine?: EngineClient | undefined;
  queryLimits: { perUser: number; exportMaxRows: number };
}

/** Groups per page of an export: the engine's largest page. */
const EXPORT_PAGE = 10_000;
const ENGINE_DOWN = 'the engine is not answering right now; try again shortly';
const appParams = z.strictObject({ id: z.string().min(1).max(128) });
const fieldParams = appParams.extend({ field: z.string().min(1).max(256) });
const tableName = z.string().min(1).max(128);
/** The spec itself is checked by the engine, against the version's schema (400 naming the field). */
const queryBody = z.looseObject({
  table: tableName.optional(),
  limit: z.unknown().optional(),
  after: z.unknown().optional(),
});
const valuesQuery = z.strictObject({
  table: tableName.optional(),
  /** JSON: the same selections as a query's. */
  selections: z.string().max(32_768).optional(),
  search: z.string().min(1).max(256).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
});

const rowsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
  /** The `next` of the previous page. */
  after: z.string().max(16_384).optional(),
  /** `field` or `field:desc`, comma separated. */
  sort: z.string().max(4096).optional(),
  /** Field names, comma separated (default all). */
  fields: z.string().max(65_536).optional(),
  selections: z.string().max(32_768).optional(),
  /** Kept for links of the row pages before the engine: only the first page. */
  offset: z.literal('0').optional(),
});

export type EngineRows = (
  reply: FastifyReply,
  appId: string,
  v: EngineVersion,
  table: string,
  query: unknown,
) => Promise<FastifyReply>;

/** A JSON query parameter, or undefined with a 400 naming it sent. */
function jsonParam(reply: FastifyReply, name: string, text: string | undefined): { value: unknown } | undefined {
  if (text === undefined) return { value: [] };
  try {
    return { value: JSON.parse(text) };
  } catch {
    void sendProblem(reply, 'FORT_ERR_BAD_REQUEST', `${name}: expected a JSON list of selections`);
    return undefined;
  }
}

/**
 * Selections, aggregates and list boxes, computed by fort-engine on the app's current version:
 * the agent checks the user (cloud authorisation, audited), names the version and the table,
 * and relays the engine's answer (which carries the version id) as it came.
 */
export function registerQueryRoutes(app: FastifyInstance, deps: QueryRoutesDeps) {
  const { catalog, engine } = deps;
  const { allowed, existing } = appAccess(deps);
  /** Versions are immutable: their schemas are asked once. */
  const schemas = new Map<string, Promise<EngineTable[]>>();

  /** The app's current engine version, or undefined with the reason sent. */
  function version(reply: FastifyReply, id: string): EngineVersion | undefined {
    if (!engine) {
      void sendProblem(reply, 'FORT_ERR_NOT_CONFIGURED', 'queries need fort-engine ([engine] in agent.toml)');
      return undefined;
    }
    const v = catalog.currentEngineVersion(id);
    if (!v)
      void sendProblem(
        reply,
        'FORT_ERR_NOT_FOUND',
        catalog.get(id)?.versionId == null
          ? `app ${id} has no data yet (no reload has succeeded)`
          : `app ${id}'s data was loaded before fort-engine served it; reload the app`,
      );
    return v;
  }

  /** The named table, or the app's only one; undefined with a 400/404 sent. */
  function table(reply: FastifyReply, id: string, v: EngineVersion, name: string | undefined): string | undefined {
    if (name === undefined) {
      if (v.tables.length === 1) return v.tables[0]!.name;
      void sendProblem(reply, 'FORT_ERR_BAD_REQUEST', `table: app ${id} has ${v.tables.length} tables; name one`);
      return undefined;
    }
    if (v.tables.some((t) => t.name === name)) return name;
    void sendProblem(reply, 'FORT_ERR_NOT_FOUND', `app ${id} has no table ${name}`);
    return undefined;
  }

  const relay = (reply: FastifyReply, a: RelayedAnswer) =>
    reply.code(a.statusCode).type(a.contentType).header('cache-control', 'no-store').send(a.text);

  /**
   * Each user's queries in the engine: `queries_per_user` run, as many again times four wait their
   * turn (a page asks for its list boxes, KPIs, chart and rows at once); past that, a 429 naming
   * the limit. One user cannot take the engine's `max_concurrent` for everyone.
   */
  const users = new Map<string, { running: number; waiting: (() => void)[] }>();
  async function slot(reply: FastifyReply): Promise<{ release: () => void } | undefined> {
    const who = reply.request.identity!;
    const key = `${who.tenant}/${who.user}`;
    const limit = deps.queryLimits.perUser;
    let u = users.get(key);
    if (!u) users.set(key, (u = { running: 0, waiting: [] }));
    if (u.running >= limit) {
      if (u.waiting.length >= limit * 4) {
        void sendProblem(
          reply.header('retry-after', '1'),
          'FORT_ERR_RATE_LIMITED',
          `at most ${limit} queries at once per user (api.queries_per_user), and ${limit * 4} waiting; wait for some to finish`,
        );
        return undefined;
      }
      // Handed over by a release: `running` stays counted for this one.
      await new Promise<void>((resolve) => u.waiting.push(resolve));
    } else u.running++;
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        const next = u.waiting.shift();
        if (next) return next();
        u.running--;
        if (u.running === 0) users.delete(key);
      },
    };
  }

  /**
   * A call to the engine that threw: unreachable is a 503 with a retry hint (its unit restarts
   * it); the engine's own refusal (e.g. the version is gone) is said as it is.
   */
  function engineFailure(reply: FastifyReply, err: unknown) {
    if (!(err instanceof FortError)) throw err;
    if (err.code !== 'FORT_ERR_ENGINE_UNAVAILABLE') return sendProblem(reply, err);
    reply.log.warn({ err: err.message }, 'fort-engine unreachable');
    return sendProblem(reply.header('retry-after', '2'), err.code, ENGINE_DOWN);
  }

  async function ask(reply: FastifyReply, call: () => Promise<RelayedAnswer>) {
    const held = await slot(reply);
    if (!held) return reply;
    try {
      return relay(reply, await call());
    } catch (err) {
      return engineFailure(reply, err);
    } finally {
      held.release();
    }
  }

  const rows: EngineRows = async (reply, appId, v, name, query) => {
    const q = parse(rowsQuery, query, reply);
    const t = q && table(reply, appId, v, name);
    const selections = q && jsonParam(reply, 'selections', q.selections);
    if (!q || !t || !selections) return reply;
    const sort = (q.sort ?? '')
      .split(',')
      .filter(Boolean)
      .map((s) => {
        const [by, dir] = s.split(':');
        return { by: by!, dir: dir === 'desc' ? 'desc' : 'asc' };
      });
    const spec = {
      selections: selections.value,
      sort,
      limit: q.limit,
      ...(q.after ? { after: q.after } : {}),
      ...(q.fields ? { fields: q.fields.split(',') } : {}),
    };
    return ask(reply, () => engine!.rows(appId, v.version, t, spec));
  };

  app.get('/api/v1/apps/:id/schema', async (req, reply) => {
    const p = parse(appParams, req.params, reply);
    if (!p || !(await allowed(req, reply, 'app.read', p.id)) || !existing(reply, p.id)) return reply;
    const v = version(reply, p.id);
    if (!v) return reply;
    const key = `${p.id}/${v.version}`;
    let tables = schemas.get(key);
    if (!tables) {
      schemas.set(key, (tables = engine!.tables(p.id, v.version).then((t) => t.tables)));
      tables.catch(() => schemas.delete(key));
    }
    try {
      return { version: v.version, tables: await tables };
    } catch (err) {
      return engineFailure(reply, err);
    }
  });

  /** A query's app, version, table and spec, authorised; or undefined with the refusal sent. */
  async function queryOf(req: FastifyRequest, reply: FastifyReply) {
    const p = parse(appParams, req.params, reply);
    const body = p && parse(queryBody, req.body ?? {}, reply);
    if (!p || !body || !(await allowed(req, reply, 'app.read', p.id)) || !existing(reply, p.id)) return undefined;
    const v = version(reply, p.id);
    const t = v && table(reply, p.id, v, body.table);
    if (!v || !t) return undefined;
    const { table: _t, ...spec } = body;
    return { appId: p.id, v, t, spec };
  }

  app.post('/api/v1/apps/:id/query', async (req, reply) => {
    const q = await queryOf(req, reply);
    return q ? ask(reply, () => engine!.query(q.appId, q.v.version, q.t, q.spec)) : reply;
  });

  app.post('/api/v1/apps/:id/export', async (req, reply) => {
    const q = await queryOf(req, reply);
    if (!q) return reply;
    const { appId, v, t } = q;
    const held = await slot(reply);
    if (!held) return reply;
    const { after: _a, limit: _l, ...spec } = q.spec;
    const page = async (after?: string): Promise<RelayedAnswer> =>
      engine!.query(appId, v.version, t, { ...spec, limit: EXPORT_PAGE, ...(after ? { after } : {}) });
    let first: RelayedAnswer;
    try {
      first = await page();
    } catch (err) {
      held.release();
      return engineFailure(reply, err);
    }
    if (first.statusCode !== 200) {
      held.release();
      return relay(reply, first);
    }
    const next = async (after: string) => {
      const a = await page(after);
      if (a.statusCode !== 200) throw new Error(`fort-engine answered ${a.statusCode} to a later page of an export`);
      return JSON.parse(a.text) as AnswerPage;
    };
    const stream = csvExport(JSON.parse(first.text) as AnswerPage, next, deps.queryLimits.exportMaxRows);
    stream.once('close', held.release);
    stream.once('error', (err) => req.log.warn({ err: err.message, appId }, 'an export ended early'));
    return reply
      .type('text/csv; charset=utf-8')
      .header('cache-control', 'no-store')
      .header(
        'content-disposition',
        `attachment; filename="${appId.replace(/[^A-Za-z0-9_.-]/g, '_')}-${v.version}.csv"`,
      )
      .send(stream);
  });

  app.get('/api/v1/apps/:id/fields/:field/values', async (req, reply) => {
    const p = parse(fieldParams, req.params, reply);
    const q = p && parse(valuesQuery, req.query, reply);
    if (!p || !q || !(await allowed(req, reply, 'app.read', p.id)) || !existing(reply, p.id)) return reply;
    const selections = jsonParam(reply, 'selections', q.selections);
    if (!selections) return reply;
    const v = version(reply, p.id);
    const t = v && table(reply, p.id, v, q.table);
    if (!v || !t) return reply;
    const spec = {
      field: p.field,
      selections: selections.value,
      ...(q.search ? { search: q.search } : {}),
      ...(q.limit ? { limit: q.limit } : {}),
    };
    return ask(reply, () => engine!.fields(p.id, v.version, t, spec));
  });
  return { rows };
}
