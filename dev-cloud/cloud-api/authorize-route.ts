import { PairingRequestRefused } from '../pairing/registry.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DevCloudServer } from '../server.js';
import { z } from 'zod';
import { sendRawProblem, sendBadRequest } from '../../lib/http-problem.js';
import type { AccessTokens } from './access-tokens.js';
import { problemErrorHandler } from './problems.js';
import { ACTIONS, decide, type Policy } from './policy.js';
import { retryAfterHeader, type Refusal } from '../refusals.js';

const field = z.string().min(1).max(256);
export const authorizeBodySchema = z.strictObject({
  user: field,
  tenant: field,
  action: z.enum(ACTIONS, { error: `action must be one of ${ACTIONS.join(', ')}` }),
  resource: field,
});

export interface AuthorizeRouteDeps {
  accessTokens: AccessTokens;
  policy: () => Policy;
  available: () => boolean;
  /** An armed fault for this request (429/503 + Retry-After), taken, or undefined. */
  refusal: (route: CloudApiRoute | undefined) => Refusal | undefined;
  /** Every request that reaches the route (agent tests: did the fort ask?). */
  onRequest: () => void;
  onDecision: (allow: boolean) => void;
  /** `POST /api/v1/unpair`: the fort asks to be revoked; false when it is not a paired fort. */
  unpair?: (clientId: string) => boolean;
  /** `POST /api/v1/rotate`: the fort's new keys (PairingRequestRefused → 400). */
  rotate?: (clientId: string, body: unknown) => Promise<unknown>;
  /** `POST /api/v1/device-certificates`: a certificate for another process of the fort. */
  deviceCertificate?: (clientId: string, body: unknown) => Promise<unknown>;
}

const unauthenticated = (reply: FastifyReply, detail: string) =>
  sendRawProblem(
    reply.header('www-authenticate', 'Bearer'),
    401,
    'FORT_ERR_UNAUTHENTICATED',
    'Access token missing, unknown or expired',
    detail,
  );

/** The fort-facing routes of the cloud API a refusal can be armed for (`CloudApi.refuse`). */
export type CloudApiRoute = 'token' | 'authorize' | 'unpair' | 'rotate' | 'device-certificates';

/** Which route of this plugin a request path is (query string ignored). */
function cloudApiRouteOf(url: string): CloudApiRoute | undefined {
  const name = /^\/api\/v1\/(authorize|unpair|rotate|device-certificates)$/.exec(url.split('?')[0]!)?.[1];
  return name as CloudApiRoute | undefined;
}

/** `POST /api/v1/authorize`: the cloud's decision for one user action on one app. */
export async function authorizeRoute(app: DevCloudServer, deps: AuthorizeRouteDeps) {
  // Malformed JSON, wrong content type, oversized body: a problem, not fastify's own shape.
  app.setErrorHandler(problemErrorHandler);

  /** The fort whose access token authenticated each request. */
  const clientOf = new WeakMap<FastifyRequest, string>();

  // Before the body is read: an outage or a bad token is answered without parsing anything.
  app.addHook('onRequest', async (req, reply) => {
    deps.onRequest();
    const refusal = deps.refusal(cloudApiRouteOf(req.url));
    if (refusal) {
      const retryAfter = retryAfterHeader(refusal);
      if (retryAfter !== undefined) reply.header('retry-after', retryAfter);
      return refusal.status === 429
        ? sendRawProblem(reply, 429, 'FORT_ERR_RATE_LIMITED', 'Too many requests', 'dev cloud fault injection')
        : sendRawProblem(reply, 503, 'FORT_ERR_UNAVAILABLE', 'Cloud unavailable', 'dev cloud fault injection');
    }
    if (!deps.available())
      return sendRawProblem(reply, 503, 'FORT_ERR_UNAVAILABLE', 'Cloud unavailable', 'dev cloud test hook');
    const m = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(req.headers.authorization ?? '');
    if (!m) return unauthenticated(reply, 'expected authorization: Bearer <access token>');
    const grant = deps.accessTokens.lookup(m[1]!);
    if (!grant) return unauthenticated(reply, 'access token unknown or expired');
    clientOf.set(req, grant.clientId);
  });

  app.post('/api/v1/authorize', { bodyLimit: 16 * 1024 }, async (req, reply) => {
    const body = authorizeBodySchema.safeParse(req.body);
    if (!body.success) return sendBadRequest(reply, body.error);
    const clientId = clientOf.get(req)!;
    const policy = deps.policy();
    const allow = decide(policy, clientId, body.data);
    deps.onDecision(allow);
    req.log.info({ clientId, ...body.data, allow }, 'authorize');
    return { allow, ttl: policy.decision_ttl_seconds };
  });

  const keyRoute = (path: string, handle: ((clientId: string, body: unknown) => Promise<unknown>) | undefined) => {
    if (!handle) return;
    app.post(path, { bodyLimit: 64 * 1024 }, async (req, reply) => {
      try {
        return await handle(clientOf.get(req)!, req.body);
      } catch (err) {
        if (err instanceof PairingRequestRefused)
          return sendRawProblem(reply, 400, 'FORT_ERR_BAD_REQUEST', 'Bad request', err.message);
        throw err;
      }
    });
  };
  keyRoute('/api/v1/rotate', deps.rotate);
  keyRoute('/api/v1/device-certificates', deps.deviceCertificate);

  const unpair = deps.unpair;
  if (unpair) {
    app.post('/api/v1/unpair', async (req, reply) => {
      const clientId = clientOf.get(req)!;
      if (!unpair(clientId))
        return sendRawProblem(
          reply,
          409,
          'FORT_ERR_CONFLICT',
          'Not paired',
          `${clientId} was not paired with a code, so it cannot unpair`,
        );
      req.log.warn({ clientId }, 'fort unpaired itself');
      return { fortId: clientId, unpaired: true };
    });
  }
}
