import { isDiskFull } from './disk-full.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ERRORS, FortError, type FortErrorCode } from './errors.js';

/**
 * RFC 9457 problem details of a catalogue error: status and title come from its code
 * (lib/error-catalogue.ts), `detail` says what happened this time (an error's message unless
 * given). `requestId` matches the `x-request-id` header and the log line of the request.
 * `status` is only for a framework's refusal that has decided its status already (Fastify's
 * 415, …); everything else answers with its code's status.
 */
export function sendProblem(
  reply: FastifyReply,
  problem: FortError | FortErrorCode,
  detail?: string,
  opts: { status?: number } = {},
) {
  const code = problem instanceof FortError ? problem.code : problem;
  const { status, title } = ERRORS[code];
  return sendRawProblem(
    reply,
    opts.status ?? status,
    code,
    title,
    detail ?? (problem instanceof FortError ? problem.message : undefined),
  );
}

/**
 * A problem with a code outside the catalogue, for the dev cloud: it stands in for a cloud
 * with codes of its own. Product code answers with sendProblem (a test holds it to that).
 */
export function sendRawProblem(reply: FastifyReply, status: number, code: string, title: string, detail?: string) {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({
      type: `https://fort.dev/problems/${code.toLowerCase()}`,
      title,
      status,
      code,
      ...(detail ? { detail } : {}),
      requestId: reply.request.id,
    });
}

/** Every issue of a refused request as `field.path: why` (`root` when the whole value is wrong), `; `-joined. */
export function issueDetail(err: z.ZodError, root = 'body'): string {
  return err.issues.map((i) => `${i.path.map(String).join('.') || root}: ${i.message}`).join('; ');
}

/** 400 FORT_ERR_BAD_REQUEST naming every field a request got wrong. */
export function sendBadRequest(reply: FastifyReply, err: z.ZodError, root = 'body') {
  return sendProblem(reply, 'FORT_ERR_BAD_REQUEST', issueDetail(err, root));
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
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return sendProblem(
        reply,
        'FORT_ERR_TOO_LARGE',
        `the body of ${route} is limited to ${req.routeOptions.bodyLimit} bytes`,
      );
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
      return sendProblem(
        reply,
        'FORT_ERR_BAD_REQUEST',
        `${route} takes application/json, not ${req.headers['content-type'] ?? 'a body without a content type'}`,
        { status: 415 },
      );
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500)
      return sendProblem(reply, 'FORT_ERR_BAD_REQUEST', err.message, { status: err.statusCode });
    if (isDiskFull(err)) {
      req.log.error({ err: err.message, route }, `${api} request failed: the disk is full`);
      return sendProblem(
        reply,
        'FORT_ERR_DISK_LOW',
        `${route} could not be stored: the fort's data disk is full; nothing was changed, try again once space is freed`,
      );
    }
    req.log.error({ err }, `${api} request failed`);
    return sendProblem(reply, 'FORT_ERR_INTERNAL', `see the fort's log for request ${req.id}`);
  };
}

/**
 * An API's `frameworkErrors`: what Fastify's router refuses before any hook or route runs (a path
 * that is not valid percent-encoding, a path parameter longer than `maxParamLength`) answered as
 * a problem too, without echoing the path.
 */
export function frameworkProblem(err: RequestError, _req: FastifyRequest, reply: FastifyReply): void {
  if (err.code === 'FST_ERR_BAD_URL') {
    void sendProblem(reply, 'FORT_ERR_BAD_REQUEST', 'the path is not valid percent-encoding', { status: 400 });
  } else if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void sendProblem(reply, 'FORT_ERR_BAD_REQUEST', 'a path segment is longer than any name or id this API serves', {
      status: 414,
    });
  } else {
    reply.log.error({ err }, 'request refused by the router');
    void sendProblem(reply, 'FORT_ERR_INTERNAL', `see the fort's log for request ${reply.request.id}`);
  }
}
