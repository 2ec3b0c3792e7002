import type { FastifyReply } from 'fastify';

/** RFC 9457 problem details; `code` is the stable machine-readable error code. */
export function sendProblem(reply: FastifyReply, status: number, code: string, title: string, detail?: string) {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: `https://fort.dev/problems/${code.toLowerCase()}`, title, status, code, ...(detail ? { detail } : {}) });
}
