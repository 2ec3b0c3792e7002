import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';

/**
 * RFC 9457 problem details; `code` is the stable machine-readable error code and
 * `requestId` matches the `x-request-id` header and the log line of the request.
 */
export function sendProblem(reply: FastifyReply, status: number, code: string, title: string, detail?: string) {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: `https://fort.dev/problems/${code.toLowerCase()}`, title, status, code, ...(detail ? { detail } : {}), requestId: reply.request.id });
}

/** Every issue of a refused request as `field.path: why` (`root` when the whole value is wrong), `; `-joined. */
export function issueDetail(err: z.ZodError, root = 'body'): string {
  return err.issues.map((i) => `${i.path.map(String).join('.') || root}: ${i.message}`).join('; ');
}

/** 400 FORT_ERR_BAD_REQUEST naming every field a request got wrong. */
export function sendBadRequest(reply: FastifyReply, err: z.ZodError, root = 'body') {
  return sendProblem(reply, 400, 'FORT_ERR_BAD_REQUEST', 'Bad request', issueDetail(err, root));
}

type RequestError = Error & { statusCode?: number; code?: string };

/**
 * An API's error handler: Fastify's refusals before a route runs (a body over the route's
 * limit, bad JSON, an unsupported content type) become problems saying what to change; any
 * other error is logged and answered 500 with the request id, never the error itself.
 */
export function problemErrorHandler(api: string) {
  return (err: RequestError, req: FastifyRequest, reply: FastifyReply) => {
    // The route's pattern, else the path: never the query string, where a token may hide.
    const route = `${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]}`;
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendProblem(reply, 413, 'FORT_ERR_TOO_LARGE', 'Request too large', `the body of ${route} is limited to ${req.routeOptions.bodyLimit} bytes`);
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendProblem(reply, 415, 'FORT_ERR_BAD_REQUEST', 'Unsupported media type', `${route} takes application/json, not ${req.headers['content-type'] ?? 'a body without a content type'}`);
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return sendProblem(reply, err.statusCode, 'FORT_ERR_BAD_REQUEST', 'Bad request', err.message);
    req.log.error({ err }, `${api} request failed`);
    return sendProblem(reply, 500, 'FORT_ERR_INTERNAL', 'Internal error', `see the fort's log for request ${req.id}`);
  };
}
