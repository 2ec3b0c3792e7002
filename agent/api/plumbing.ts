import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import type { FortErrorCode } from '../../lib/errors.js';
import { frameworkProblem } from '../../lib/http-problem.js';
import type { Logger } from '../../lib/logger.js';
import { TLS_MIN_VERSION, type TlsMaterial } from '../../lib/tls.js';
import type { ApiConfig } from './config.js';
import { API_HEADERS } from './security-headers.js';

/** Rate-limit refusals become a 429 problem in the error handler. */
const rateLimited = (_req: unknown, ctx: { ttl: number }) => ({
  statusCode: 429,
  code: 'FORT_ERR_RATE_LIMITED' satisfies FortErrorCode,
  ttl: ctx.ttl,
});

/**
 * The client API's server and what every request goes through before a route: request ids,
 * security headers, CORS for the configured origins, the per-IP limit, and the per-user limit
 * (a pre-handler, applied once the user is known). The same for the agent and for the
 * benchmark that measures what this plumbing alone costs.
 */
export async function createClientApiServer(
  config: Pick<ApiConfig, 'cors_origins' | 'rate_limit'>,
  tls: Pick<TlsMaterial, 'key' | 'cert'>,
  log: Logger,
) {
  const app = Fastify({
    loggerInstance: log,
    // One access line per request (the agent's, optional) instead of Fastify's two. Set through
    // a LogController: the top-level options print FSTDEP023/024 at every start.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    bodyLimit: 64 * 1024,
    // Header size is bounded by Node (16 KB); tokens beyond max_token_bytes are refused by the verifier.
    https: { key: tls.key, cert: tls.cert, minVersion: TLS_MIN_VERSION },
    genReqId: () => randomUUID(),
    // App ids are up to 128 characters; Fastify's default (100) would refuse the longest with a 414.
    routerOptions: { maxParamLength: 128 },
    // Refused by the router before any hook: a problem like every other refusal, with the API's headers.
    frameworkErrors: (err, req, reply) =>
      frameworkProblem(err, req, reply.headers(API_HEADERS).header('x-request-id', req.id)),
  });
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  // Every answer is JSON unless a route says otherwise (the viewer page and script).
  app.addHook('onRequest', (_req, reply, done) => {
    reply.headers(API_HEADERS);
    done();
  });
  await app.register(cors, {
    // Exact origins only: a reflected or wildcard origin would let any page read data with a stolen token.
    origin: config.cors_origins,
    methods: ['GET', 'POST'],
    allowedHeaders: ['authorization', 'content-type'],
    exposedHeaders: ['x-request-id', 'retry-after'],
    maxAge: 600,
  });
  await app.register(rateLimit, {
    max: config.rate_limit.per_ip_per_minute,
    timeWindow: 60_000,
    errorResponseBuilder: rateLimited,
  });
  // Counted by hand: the handler app.rateLimit() returns runs once per request, and the per-IP
  // limit has run on every request already, so it would never count a user.
  const perUserLimit = app.createRateLimit({
    max: config.rate_limit.per_user_per_minute,
    timeWindow: 60_000,
    keyGenerator: (req) => `user:${req.identity?.tenant}/${req.identity?.user}`,
  });
  const perUser = async (req: FastifyRequest, reply: FastifyReply) => {
    const limit = await perUserLimit(req);
    if (limit.isAllowed || !limit.isExceeded) return;
    reply.header('retry-after', String(limit.ttlInSeconds));
    throw Object.assign(new Error('per-user rate limit exceeded'), rateLimited(req, limit));
  };
  return { app, perUser };
}
