import type { FastifyReply } from 'fastify';

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
