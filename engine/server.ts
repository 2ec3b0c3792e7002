import type { TLSSocket } from 'node:tls';
import { pipeline, Readable } from 'node:stream';
import split2 from 'split2';
import Fastify, { LogController } from 'fastify';
import { z } from 'zod';
import { FortError } from '../lib/errors.js';
import { frameworkProblem, problemErrorHandler, sendBadRequest, sendProblem } from '../lib/http-problem.js';
import type { Logger } from '../lib/logger.js';
import { trustZoneServerTls, type TlsMaterial } from '../lib/tls.js';
import { certificatePeer } from '../lib/trust-zone-peer.js';
import { runFieldValues, runQuery, type QueryLimits, type QueryTarget } from './query/run.js';
import { fieldValuesSpecSchema, querySpecSchema } from './query/spec.js';
import { rowsSpecSchema, runRows } from './query/rows.js';
import type { VersionStore } from './versions.js';
import { createAnswerCache } from './query/answer-cache.js';
import { loadRequestSchema, type VersionLoader } from './loads.js';
import { LOG_LEVELS, type LogLevelControl } from '../lib/log-level.js';

export interface EngineServerDeps {
  tls: TlsMaterial;
  allowedClients: readonly string[];
  versions: VersionStore;
  loads: VersionLoader;
  limits: QueryLimits;
  /** Queries running at once; the rest wait their turn. */
  maxConcurrent: number;
  /** Bytes of answers kept (versions are immutable, so an answer never goes stale); 0 = none. */
  cacheBytes: number;
  version: string;
  log: Logger;
  /** `PUT /engine/v1/log-level` (the agent relays `fortctl log-level --service engine`). */
  logLevel?: LogLevelControl;
}

/** App and version ids are checked where they become paths (versions.ts). */
const appPath = z.strictObject({ app: z.string().max(128) });
const versionPath = appPath.extend({ version: z.string().max(128) });
const tablePath = versionPath.extend({ table: z.string().min(1).max(128) });

/** At most `n` at once, the rest in arrival order. */
function gate(n: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(f: () => Promise<T>): Promise<T> => {
    if (running >= n) await new Promise<void>((r) => waiting.push(r));
    running++;
    try {
      return await f();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

/** A JSON line of a streamed load at most (a row of 2000 long texts fits; a runaway line does not). */
const MAX_LINE_BYTES = 16 * 1024 * 1024;

/**
 * A streamed load (`application/x-ndjson`): its first line is the load request, the lines after
 * it the rows of its `rows` tables (rows-table.ts). A line beyond MAX_LINE_BYTES fails the stream.
 */
function streamedLoad(body: Readable) {
  // pipeline, not pipe: a request that breaks off must fail the lines, not leave them waiting.
  const split = pipeline(body, split2({ maxLength: MAX_LINE_BYTES }), () => {});
  const lines = split[Symbol.asyncIterator]() as AsyncIterator<string>;
  return {
    lines,
    /** The request line, parsed; undefined (a 400) when it is missing or not JSON. */
    async request(): Promise<unknown> {
      try {
        const first = await lines.next();
        return first.done ? undefined : JSON.parse(first.value);
      } catch {
        return undefined;
      }
    },
  };
}

/**
 * The engine's only listener: trust-zone mutual TLS (the installation's root CA only), callers
 * named in `allowed_clients` (the agent). Queries are specs, never SQL.
 */
export async function buildEngineServer(deps: EngineServerDeps) {
  const allowed = new Set(deps.allowedClients);
  const app = Fastify({
    loggerInstance: deps.log,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    https: trustZoneServerTls(deps.tls),
    frameworkErrors: frameworkProblem,
  });
  app.addHook('onRequest', async (req, reply) => {
    const found = certificatePeer(req.raw.socket as TLSSocket);
    const reason = !found.ok
      ? found.reason
      : allowed.has(found.peer.name)
        ? undefined
        : `trust-zone member ${found.peer.name} may not call the engine`;
    if (reason) {
      req.log.warn({ reason }, 'engine request refused');
      return sendProblem(reply, 'FORT_ERR_FORBIDDEN', reason);
    }
  });
  const otherErrors = problemErrorHandler('engine');
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) =>
    err instanceof FortError ? sendProblem(reply, err) : otherErrors(err, req, reply),
  );
  const queued = gate(deps.maxConcurrent);
  const cache = deps.cacheBytes > 0 ? createAnswerCache(deps.cacheBytes) : undefined;

  app.get('/engine/v1/health', async () => ({
    status: 'healthy',
    version: deps.version,
    openVersions: deps.versions.openCount(),
    cache: cache?.stats() ?? null,
  }));

  /** A question about one table of a version: the path and the body checked, then asked in turn. */
  const tableRoute = <S extends z.ZodType>(
    what: string,
    spec: S,
    ask: (t: QueryTarget, q: z.output<S>) => Promise<unknown>,
  ) =>
    app.post(`/engine/v1/apps/:app/versions/:version/tables/:table/${what}`, async (req, reply) => {
      const path = tablePath.safeParse(req.params);
      if (!path.success) return sendBadRequest(reply, path.error, 'path');
      const body = spec.safeParse(req.body);
      if (!body.success) return sendBadRequest(reply, body.error);
      const { app: appId, version, table } = path.data;
      // The parsed spec (defaults filled in, keys in the schema's order) is the normalised query.
      const question = JSON.stringify([table, what, body.data]);
      let text = cache?.get(appId, version, question);
      if (text === undefined) {
        const answer = await queued(() => deps.versions.use(appId, version, table, (t) => ask(t, body.data)));
        text = JSON.stringify(answer);
        cache?.set(appId, version, question, text);
      }
      return reply.type('application/json; charset=utf-8').send(text);
    });
  tableRoute('query', querySpecSchema, (t, q) => runQuery(t, q, deps.limits));
  tableRoute('fields', fieldValuesSpecSchema, (t, q) => runFieldValues(t, q, deps.limits));
  tableRoute('rows', rowsSpecSchema, (t, q) => runRows(t, q, deps.limits));

  // A streamed load (rows the agent fetched, e.g. over HTTP) is read as it comes, not buffered:
  // its size is bounded by the rows limit and the line length, not by bodyLimit.
  app.addContentTypeParser('application/x-ndjson', (_req, payload, done) => done(null, payload));
  app.post('/engine/v1/apps/:app/versions', async (req, reply) => {
    const streamed = req.body instanceof Readable ? streamedLoad(req.body) : undefined;
    const first = streamed ? await streamed.request() : req.body;
    const request = loadRequestSchema.safeParse(first);
    if (!request.success) return sendBadRequest(reply, request.error);
    // A caller that gives up (closes the request before the answer) cancels the load: nobody
    // would learn of the version, and the loads behind it need not wait for it.
    const cancel = new AbortController();
    const closed = () => {
      if (!reply.sent) cancel.abort();
    };
    reply.raw.once('close', closed);
    try {
      // The app id is checked where it becomes a path (versions.ts).
      const app = (req.params as { app: string }).app;
      const result = await deps.loads.load(app, request.data, cancel.signal, streamed?.lines);
      return reply.code(201).send(result);
    } finally {
      reply.raw.off('close', closed);
    }
  });

  if (deps.logLevel) {
    const control = deps.logLevel;
    const body = z.strictObject({
      level: z.enum(LOG_LEVELS),
      for_seconds: z.int().min(1).max(86_400).default(600),
    });
    app.put('/engine/v1/log-level', async (req, reply) => {
      const b = body.safeParse(req.body ?? {});
      if (!b.success) return sendBadRequest(reply, b.error);
      return control.set(b.data.level, b.data.for_seconds * 1000);
    });
    app.get('/engine/v1/log-level', async () => control.view());
  }

  app.get('/engine/v1/apps/:app/versions', async (req, reply) => {
    const path = appPath.safeParse(req.params);
    if (!path.success) return sendBadRequest(reply, path.error, 'path');
    return { app: path.data.app, versions: deps.versions.list(path.data.app) };
  });

  app.get('/engine/v1/apps/:app/versions/:version/tables', async (req, reply) => {
    const path = versionPath.safeParse(req.params);
    if (!path.success) return sendBadRequest(reply, path.error, 'path');
    const { app: appId, version } = path.data;
    return { version, tables: await queued(() => deps.versions.tables(appId, version)) };
  });

  app.delete('/engine/v1/apps/:app/versions/:version', async (req, reply) => {
    const path = versionPath.safeParse(req.params);
    if (!path.success) return sendBadRequest(reply, path.error, 'path');
    // Queries still running on it finish first; it is gone for new ones at once.
    await deps.versions.remove(path.data.app, path.data.version);
    cache?.forget(path.data.app, path.data.version);
    return reply.code(204).send();
  });

  app.setNotFoundHandler((req, reply) => sendProblem(reply, 'FORT_ERR_NOT_FOUND', `${req.method} ${req.url}`));
  return app;
}
