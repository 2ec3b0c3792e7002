import type { FastifyReply } from 'fastify';
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
