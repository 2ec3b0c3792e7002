import type { FastifyError, FastifyReply } from 'fastify';
import type { DevCloudServer } from '../server.js';
import type { AssertionVerifier } from './client-assertion.js';
import type { AccessTokens } from './access-tokens.js';
import { retryAfterHeader, type Refusal } from '../refusals.js';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const FORM = 'application/x-www-form-urlencoded';
const BODY_LIMIT = 16 * 1024;

export interface TokenRouteDeps {
  verifier: AssertionVerifier;
  accessTokens: AccessTokens;
  available: () => boolean;
  /** An armed fault for this request (429/503 + Retry-After), taken, or undefined. */
  refusal: () => Refusal | undefined;
  onIssued: (clientId: string) => void;
  onRefused: (reason: string) => void;
}

/** RFC 6749 §5.2 error body; token responses must never be cached (§5.1). */
function oauthError(reply: FastifyReply, status: number, error: string, description: string) {
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .send({ error, error_description: description });
}

/**
 * `POST /oauth/token`: client credentials with an RFC 7523 client assertion. Registered as
 * its own plugin so the form parser and the RFC 6749 error shape stay on this route.
 */
export async function tokenRoute(app: DevCloudServer, deps: TokenRouteDeps) {
  app.addContentTypeParser(FORM, { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_req, body, done) =>
    done(null, new URLSearchParams(body as string)),
  );
  // Body too large, other content types, parse failures: still an RFC 6749 answer.
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) req.log.error({ err }, 'token endpoint failed');
    return oauthError(
      reply,
      status,
      status === 500 ? 'server_error' : 'invalid_request',
      status === 500 ? 'internal error' : err.message,
    );
  });

  app.post('/oauth/token', { bodyLimit: BODY_LIMIT }, async (req, reply) => {
    const refusal = deps.refusal();
    if (refusal) {
      const retryAfter = retryAfterHeader(refusal);
      if (retryAfter !== undefined) reply.header('retry-after', retryAfter);
      // RFC 6749 has no rate-limit error code; its temporarily_unavailable fits both statuses.
      return oauthError(reply, refusal.status, 'temporarily_unavailable', 'dev cloud fault injection');
    }
    if (!deps.available())
      return oauthError(reply, 503, 'temporarily_unavailable', 'cloud unavailable (dev cloud test hook)');
    if (!(req.body instanceof URLSearchParams))
      return oauthError(reply, 400, 'invalid_request', `content-type must be ${FORM}`);
    const form = req.body;
    // RFC 6749 §3.2: parameters must not be repeated.
    const repeated = [...new Set(form.keys())].find((k) => form.getAll(k).length > 1);
    if (repeated) return oauthError(reply, 400, 'invalid_request', `parameter ${repeated} repeated`);
    const grantType = form.get('grant_type');
    const assertionType = form.get('client_assertion_type');
    const assertion = form.get('client_assertion');
    if (!grantType) return oauthError(reply, 400, 'invalid_request', 'grant_type missing');
    if (grantType !== 'client_credentials')
      return oauthError(reply, 400, 'unsupported_grant_type', 'only client_credentials is supported');
    if (!assertionType || !assertion)
      return oauthError(reply, 400, 'invalid_request', 'client_assertion_type and client_assertion are required');
    if (assertionType !== ASSERTION_TYPE)
      return oauthError(reply, 400, 'invalid_request', `client_assertion_type must be ${ASSERTION_TYPE}`);

    const result = await deps.verifier.verify(assertion);
    if (!result.ok) {
      deps.onRefused(result.reason);
      req.log.info({ reason: result.reason }, 'client assertion refused');
      return oauthError(reply, 401, 'invalid_client', result.reason);
    }
    const token = deps.accessTokens.issue(result.clientId);
    deps.onIssued(result.clientId);
    req.log.info({ clientId: result.clientId }, 'access token issued');
    return reply
      .header('cache-control', 'no-store')
      .header('pragma', 'no-cache')
      .send({ access_token: token, token_type: 'Bearer', expires_in: deps.accessTokens.lifetimeSeconds });
  });
}
