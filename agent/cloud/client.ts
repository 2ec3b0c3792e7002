import { randomUUID } from 'node:crypto';
import type { Agent } from 'node:https';
import { SignJWT } from 'jose';
import { z } from 'zod';
import { fullJitterDelay } from '../../lib/backoff.js';
import { FortError } from '../../lib/errors.js';
import { createJsonClient, type JsonResponse } from '../../lib/https-json.js';
import type { Logger } from '../../lib/logger.js';
import { clampRetryAfter, describeWait, retryAfterFrom } from '../../lib/retry-after.js';
import type { ClientKey } from './client-key.js';
import { cloudEndpoint } from './config.js';

export type CloudAction = 'app.list' | 'app.read' | 'app.reload';

export interface AuthorizeQuestion {
  user: string;
  tenant: string;
  action: CloudAction;
  resource: string;
}

export interface AuthorizeAnswer {
  allow: boolean;
  /** Seconds the decision may be cached. */
  ttl: number;
}

/** The cloud answered with an HTTP status we cannot use (4xx other than a stale token). */
export class CloudRefusedError extends FortError {
  constructor(
    readonly status: number,
    what: string,
  ) {
    super('FORT_ERR_UPSTREAM', `cloud API refused ${what} (${status})`, { fatal: false });
  }
}

export interface CloudClientOptions {
  baseUrl: URL;
  tokenEndpoint: URL;
  clientId: string;
  signingKey: ClientKey;
  /** Carries the cloud CA and, when configured, the proxy tunnel. */
  agent: Agent;
  timeoutMs: number;
  retries: number;
  /**
   * Longest wait before a retry that a 429 or 503 with `Retry-After` asks for (at least 1 s is
   * always waited); default `timeoutMs`, since a user may be waiting for the answer.
   */
  maxRetryAfterMs?: number;
  log: Logger;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const tokenResponse = z.object({
  access_token: z.string().min(1),
  token_type: z.string().regex(/^bearer$/i),
  expires_in: z.number().int().positive(),
});
const authorizeResponse = z.object({ allow: z.boolean(), ttl: z.number().int().min(0) });
const rotateResponse = z.object({
  device_certificate: z.string().includes('BEGIN CERTIFICATE'),
  previous_valid_until: z.string(),
});
const deviceCertificateResponse = z.object({
  fort_id: z.string().min(1),
  device_certificate: z.string().includes('BEGIN CERTIFICATE'),
  device_ca: z.string().includes('BEGIN CERTIFICATE'),
  server_ca: z.string().includes('BEGIN CERTIFICATE'),
  update_server: z.object({ url: z.string().url() }).nullable(),
  artifact_key: z.string().nullable(),
});
export type DeviceCertificateAnswer = z.output<typeof deviceCertificateResponse>;

/** Lifetime of our client assertions: short, well inside the 5 minutes the cloud allows. */
const ASSERTION_SECONDS = 60;

/**
 * The fort's client of the cloud API: an access token from an RFC 7523 client assertion
 * (cached until shortly before expiry, one refresh at a time, a fresh `jti` every time),
 * requests with a timeout each and retries on 5xx, 429 and network errors only: after the
 * server's `Retry-After` on a 429 or 503 (clamped to 1 s .. `maxRetryAfterMs`), else after a
 * jittered backoff.
 */
export function createCloudClient(opts: CloudClientOptions) {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const authorizeUrl = cloudEndpoint(opts.baseUrl.href, 'api/v1/authorize');
  const http = createJsonClient({
    agent: opts.agent,
    timeoutMs: opts.timeoutMs,
    peer: `cloud API ${opts.baseUrl.host}`,
    errorCode: 'FORT_ERR_UPSTREAM',
  });
  let token: { value: string; refreshAt: number } | undefined;
  let inflight: Promise<string> | undefined;
  const stats = { tokensFetched: 0, requests: 0, retries: 0, lastError: undefined as string | undefined };

  /** Network errors, 5xx and 429 may succeed later; anything else will not. */
  const retryable = (err: unknown) => !(err instanceof CloudRefusedError);

  async function withRetries(what: string, call: () => Promise<JsonResponse>): Promise<JsonResponse> {
    for (let attempt = 0; ; attempt++) {
      let failure: unknown;
      let retryAfterMs: number | undefined;
      try {
        stats.requests += 1;
        const res = await call();
        if (res.statusCode < 500 && res.statusCode !== 429) return res;
        retryAfterMs = retryAfterFrom(res, { now: now() });
        failure = new FortError(
          'FORT_ERR_UPSTREAM',
          `cloud API answered ${res.statusCode} to ${what}${retryAfterMs === undefined ? '' : ` (retry after ${describeWait(retryAfterMs)})`}`,
          { fatal: false, retryAfterMs },
        );
      } catch (err) {
        failure = err;
      }
      stats.lastError = (failure as Error).message;
      if (!retryable(failure) || attempt >= opts.retries) throw failure;
      stats.retries += 1;
      const delay =
        retryAfterMs === undefined
          ? fullJitterDelay(attempt, { baseMs: 200, capMs: 2000, floorMs: 50 }, opts.random)
          : clampRetryAfter(retryAfterMs, { maxMs: opts.maxRetryAfterMs ?? opts.timeoutMs });
      opts.log.warn(
        { err: (failure as Error).message, attempt: attempt + 1, delayMs: delay },
        `cloud API: ${what} failed; retrying`,
      );
      await sleep(delay);
    }
  }

  const assertion = () =>
    new SignJWT({})
      .setProtectedHeader({ alg: opts.signingKey.alg, typ: 'JWT' })
      .setIssuer(opts.clientId)
      .setSubject(opts.clientId)
      .setAudience(opts.tokenEndpoint.href)
      .setIssuedAt(Math.floor(now() / 1000))
      .setExpirationTime(Math.floor(now() / 1000) + ASSERTION_SECONDS)
      .setJti(randomUUID())
      .sign(opts.signingKey.key);

  async function fetchToken(): Promise<string> {
    const res = await withRetries('the token request', async () => {
      // A new assertion (new jti) per attempt: the cloud refuses a replayed one.
      const form = new URLSearchParams({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: await assertion(),
      });
      return http.send(opts.tokenEndpoint, {
        method: 'POST',
        body: form.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
    });
    if (res.statusCode !== 200) {
      const body = safeJson(http, res) as { error?: unknown } | undefined;
      throw new CloudRefusedError(
        res.statusCode,
        `the client assertion${typeof body?.error === 'string' ? ` (${body.error})` : ''}`,
      );
    }
    const parsed = tokenResponse.safeParse(http.json(res));
    if (!parsed.success)
      throw new FortError('FORT_ERR_UPSTREAM', 'cloud token endpoint answered 200 without a usable access token', {
        fatal: false,
      });
    const lifetimeMs = parsed.data.expires_in * 1000;
    // When to refresh, on the monotonic clock: the host clock jumping either way changes nothing.
    token = {
      value: parsed.data.access_token,
      refreshAt: performance.now() + lifetimeMs - Math.min(60_000, lifetimeMs / 5),
    };
    stats.tokensFetched += 1;
    opts.log.info({ expiresInSeconds: parsed.data.expires_in }, 'cloud access token obtained');
    return token.value;
  }

  function accessToken(): Promise<string> {
    if (token && performance.now() < token.refreshAt) return Promise.resolve(token.value);
    inflight ??= fetchToken().finally(() => {
      inflight = undefined;
    });
    return inflight;
  }

  /**
   * POST with the access token; a 401 gets one new token and one more try (revoked or expired
   * early, e.g. the cloud restarted). A 200 must parse as `answer.schema`, else the error names
   * what it lacked (`answer.shape`).
   */
  async function postAuthorized<T>(
    url: URL,
    what: string,
    body: unknown,
    answer: { schema: z.ZodType<T>; shape: string },
  ): Promise<T> {
    for (let fresh = false; ; fresh = true) {
      const bearer = await accessToken();
      const res = await withRetries(what, () =>
        http.send(url, { method: 'POST', body, headers: { authorization: `Bearer ${bearer}` } }),
      );
      if (res.statusCode === 401 && !fresh) {
        if (token?.value === bearer) token = undefined;
        continue;
      }
      if (res.statusCode !== 200) throw new CloudRefusedError(res.statusCode, what);
      const parsed = answer.schema.safeParse(http.json(res));
      if (!parsed.success)
        throw new FortError(
          'FORT_ERR_UPSTREAM',
          `cloud ${url.pathname.split('/').pop()} answered 200 without ${answer.shape}`,
          { fatal: false },
        );
      return parsed.data;
    }
  }

  const authorize = (q: AuthorizeQuestion): Promise<AuthorizeAnswer> =>
    postAuthorized(authorizeUrl, 'an authorisation', q, { schema: authorizeResponse, shape: '{allow, ttl}' });
  /** Registers this fort's new JWT key and gets a certificate for its new device key (fortctl rotate-keys). */
  const rotate = (body: { jwt_public_key: string; csr: string }) =>
    postAuthorized(cloudEndpoint(opts.baseUrl.href, 'api/v1/rotate'), 'the key rotation', body, {
      schema: rotateResponse,
      shape: '{device_certificate, previous_valid_until}',
    });
  /** A certificate for the deployment manager's own key, and where its update server is. */
  const deviceCertificate = (csr: string) =>
    postAuthorized(
      cloudEndpoint(opts.baseUrl.href, 'api/v1/device-certificates'),
      'the device certificate request',
      { csr },
      { schema: deviceCertificateResponse, shape: 'a device certificate and the update server' },
    );

  /** Asks the cloud to revoke this fort (fortctl unpair). */
  async function unpair(): Promise<void> {
    await postAuthorized(
      cloudEndpoint(opts.baseUrl.href, 'api/v1/unpair'),
      'the unpair request',
      {},
      { schema: z.unknown(), shape: 'an answer' },
    );
    token = undefined; // revoked with the fort
  }

  return {
    authorize,
    accessToken,
    unpair,
    rotate,
    deviceCertificate,
    stats: () => ({ ...stats }),
    close: () => opts.agent.destroy(),
  };
}
export type CloudClient = ReturnType<typeof createCloudClient>;

function safeJson(http: { json<T>(r: JsonResponse): T }, res: JsonResponse): unknown {
  try {
    return http.json(res);
  } catch {
    return undefined;
  }
}
