import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { sendRawProblem } from '../../lib/http-problem.js';

/**
 * Error handler of the `/api/*` and `/dev/*` scopes: fastify's own failures (malformed JSON,
 * wrong content type, oversized body) become problem+json like every other answer there.
 */
export function problemErrorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  const status = err.statusCode ?? 500;
  // A rate limit's refusal (retry-after already set) stays a 429.
  if (status === 429) return sendRawProblem(reply, 429, 'FORT_ERR_RATE_LIMITED', 'Too many requests', err.message);
  if (status >= 400 && status < 500)
    return sendRawProblem(reply, 400, 'FORT_ERR_BAD_REQUEST', 'Bad request', err.message);
  req.log.error({ err }, 'request failed');
  return sendRawProblem(reply, 500, 'FORT_ERR_INTERNAL', 'Internal error');
}
