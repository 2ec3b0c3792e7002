import type { JWK } from 'jose';
import type { DevCloudServer } from '../server.js';
import { createAccessTokens } from './access-tokens.js';
import { createAssertionVerifier } from './client-assertion.js';
import type { ClientLookup } from './clients.js';
import { parsePolicy, type Policy, type PolicyInput } from './policy.js';
import { createSigningKeys } from './signing-keys.js';
import { tokenRoute } from './token-route.js';
import { authorizeRoute, type CloudApiRoute } from './authorize-route.js';
import { userRoutes } from './user-routes.js';
import { registerHub } from './hub.js';
import { createRefusals, type ArmedRefusal } from '../refusals.js';

export interface CloudApiOptions {
  /** `iss` of user tokens; the token endpoint is `<issuer>/oauth/token`. */
  issuer: string;
  /** Paired forts (not revoked) of a tenant: with the policy's, who a user token may be for. */
  pairedForts?: (tenant: string) => string[];
  accessTokenSeconds: number;
  userTokenSeconds: number;
  policy: Policy;
  fortOrigins: readonly string[];
  clients: ClientLookup;
  /** A paired fort asking to be revoked (`POST /api/v1/unpair`); absent = no such route. */
  unpair?: (clientId: string) => boolean;
  /** A paired fort's new keys (`POST /api/v1/rotate`); absent = no such route. */
  rotate?: (clientId: string, body: unknown) => Promise<unknown>;
  /** A certificate for another process of a paired fort (`POST /api/v1/device-certificates`). */
  deviceCertificate?: (clientId: string, body: unknown) => Promise<unknown>;
  now: () => Date;
}

export interface CloudApiStats {
  /** Requests that reached `/api/v1/authorize`, whatever the answer (did the fort ask?). */
  authorize: number;
  /** Of those, answered 200 with a decision. */
  decisions: number;
  tokensIssued: number;
  tokensRefused: number;
  lastTokenRefusal: string;
}

/** The cloud API of dev-cloud/CLOUD-API.md on the dev cloud's HTTPS server, with test hooks. */
export async function registerCloudApi(app: DevCloudServer, opts: CloudApiOptions) {
  const tokenUrl = `${opts.issuer}/oauth/token`;
  const stats: CloudApiStats = { authorize: 0, decisions: 0, tokensIssued: 0, tokensRefused: 0, lastTokenRefusal: '' };
  let available = true;
  const refusals = createRefusals<CloudApiRoute>();
  let policy = opts.policy;
  const accessTokens = createAccessTokens({ lifetimeSeconds: opts.accessTokenSeconds, now: opts.now });
  const verifier = createAssertionVerifier({ clients: opts.clients, tokenUrl, now: opts.now });
  const keys = await createSigningKeys({ issuer: opts.issuer, now: opts.now });

  await app.register(tokenRoute, {
    verifier,
    accessTokens,
    available: () => available,
    refusal: () => refusals.take('token'),
    onIssued: () => void stats.tokensIssued++,
    onRefused: (reason) => {
      stats.tokensRefused++;
      stats.lastTokenRefusal = reason;
    },
  });
  await app.register(authorizeRoute, {
    accessTokens,
    policy: () => policy,
    available: () => available,
    refusal: (route) => refusals.take(route),
    onRequest: () => void stats.authorize++,
    onDecision: () => void stats.decisions++,
    ...(opts.unpair ? { unpair: opts.unpair } : {}),
    ...(opts.rotate ? { rotate: opts.rotate } : {}),
    ...(opts.deviceCertificate ? { deviceCertificate: opts.deviceCertificate } : {}),
  });
  await app.register(userRoutes, {
    keys,
    userTokenSeconds: opts.userTokenSeconds,
    fortOrigins: opts.fortOrigins,
    fortsOf: (tenant) => [
      ...new Set([...(policy.tenants[tenant]?.forts ?? []), ...(opts.pairedForts?.(tenant) ?? [])]),
    ],
  });
  registerHub(app);

  return {
    issuer: opts.issuer,
    tokenUrl,
    jwksUrl: `${opts.issuer}/.well-known/jwks.json`,
    stats: (): CloudApiStats => ({ ...stats }),
    /** false: `/oauth/token` and `/api/v1/authorize` answer 503 (an outage, port still open). */
    setAvailable(value: boolean): void {
      available = value;
    },
    /**
     * The next `times` (default 1) requests to `routes` (default any of the fort's: token,
     * authorize, unpair, rotate, device-certificates) get `status` (429 or 503) with `retryAfter`
     * as `Retry-After` (seconds, a Date sent as an HTTP-date, or raw text; absent = none), before
     * the access token is looked at. Armed refusals queue; each request takes the oldest that matches.
     */
    refuse(r: ArmedRefusal<CloudApiRoute>): void {
      refusals.arm(r);
    },
    /** Disarms every refusal not yet taken. */
    clearRefusals(): void {
      refusals.clear();
    },
    /** Replace the policy in memory (validated like the file). */
    setPolicy(next: PolicyInput): void {
      policy = parsePolicy(next);
    },
    /** Forget every access token: the next authorize call of each fort gets a 401. */
    revokeAccessTokens(): void {
      accessTokens.revokeAll();
    },
    /** A revoked fort's access tokens stop working at once. */
    revokeClient(clientId: string): void {
      accessTokens.revokeClient(clientId);
    },
    currentKid: () => keys.currentKid(),
    /** Test hook: serve another issuer's public key too, so a test can sign any token (attacks) the fort will check. */
    publishExtraKey: (jwk: JWK) => keys.publishExtraKey(jwk),
  };
}
export type CloudApi = Awaited<ReturnType<typeof registerCloudApi>>;
