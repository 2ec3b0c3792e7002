import { z } from 'zod';
import {
  filePath,
  host,
  httpsOrigin,
  httpsUrl,
  identifier,
  intRange,
  nonEmpty,
  port,
} from '../../lib/config/fields.js';

/** User-token checks of the client API (the cloud issues the tokens; see PROTOCOLS.md: JWT). */
export const authSection = () =>
  z.strictObject({
    issuer: httpsUrl().describe("Expected `iss` of user tokens (the cloud's issuer URL)"),
    audience: nonEmpty('an audience')
      .optional()
      .describe(
        'Expected `aud` of user tokens; default fort:<this fort id>, so a token the cloud issued for another fort of the tenant is refused here',
      ),
    tenant: identifier().describe('The tenant this fort serves; tokens of other tenants are refused'),
    jwks_url: httpsUrl()
      .optional()
      .describe('JWKS of the user-token keys (default: <cloud.url>/.well-known/jwks.json)'),
    algorithms: z
      .array(
        z.enum(['ES256', 'ES384', 'EdDSA', 'PS256', 'RS256'], {
          error: 'expected asymmetric algorithms only: ES256, ES384, EdDSA, PS256, RS256',
        }),
      )
      .min(1, { error: 'expected at least one algorithm' })
      .default(['ES256'])
      .describe('Allowed signature algorithms (asymmetric only; never none or HMAC)'),
    clock_tolerance_seconds: intRange(0, 60).default(30).describe('Leeway for exp/nbf'),
    max_token_bytes: intRange(1024, 16_384).default(8192).describe('Longer tokens are refused before parsing'),
    jwks_cooldown_seconds: intRange(1, 3600)
      .default(30)
      .describe('An unknown kid refetches the JWKS at most once per this period'),
    jwks_cache_seconds: intRange(10, 86_400)
      .default(600)
      .describe('How long fetched JWKS keys are used before refetching'),
    verified_cache_size: intRange(0, 100_000)
      .default(1024)
      .describe('Verified tokens remembered (by hash) to skip the signature check; 0 = verify every request'),
    verified_cache_seconds: intRange(1, 600)
      .default(60)
      .describe('Longest a remembered token is trusted before it is checked against the JWKS again'),
  });

/** `[api]` of agent.toml: the client-zone HTTPS API for browsers on the private network. */
export const apiSection = () =>
  z.strictObject({
    host: host().default('127.0.0.1').describe('Address of the client-zone HTTPS API (the private network interface)'),
    port: port().describe('Port of the client-zone HTTPS API'),
    tls: z.strictObject({
      cert: filePath().describe('Server certificate from the client-zone CA (leaf first, then intermediates)'),
      key: filePath().describe('Its private key; must be mode 0600'),
    }),
    cors_origins: z
      .array(httpsOrigin())
      .default([])
      .describe('Origins (e.g. the cloud hub) whose pages may call the API cross-origin'),
    rate_limit: z
      .strictObject({
        per_ip_per_minute: intRange(10, 1_000_000).default(1200).describe('Requests per client IP per minute'),
        per_user_per_minute: intRange(10, 1_000_000)
          .default(600)
          .describe('Authenticated requests per user per minute'),
      })
      .default({ per_ip_per_minute: 1200, per_user_per_minute: 600 }),
    access_log: z
      .boolean()
      .default(false)
      .describe(
        'One log line per request (method, path without query, status, time, user). Off by default: the audit trail already records every decision durably, and refusals and errors are logged either way',
      ),
    page_cache_mib: intRange(1, 1024)
      .default(8)
      .describe(
        'Memory for serialized row pages of app versions (immutable, so served from memory after the first read)',
      ),
    max_answer_mib: intRange(1, 1024)
      .default(16)
      .describe(
        'One rows page of an app the agent serves itself, as JSON, at most; past it a 422 names this limit (cells can be megabytes each)',
      ),
    queries_per_user: intRange(1, 64)
      .default(4)
      .describe(
        'Queries (and exports) one user may have running in fort-engine at once; four times as many wait their turn, more get a 429',
      ),
    export_max_rows: intRange(1000, 100_000_000)
      .default(1_000_000)
      .describe('Rows of one CSV export at most; a longer answer ends with a last line saying it was cut'),
    viewer_login_url: httpsUrl()
      .optional()
      .describe('Where the viewer page (/) sends users to sign in; the cloud redirects back with #token='),
    auth: authSection()
      .optional()
      .describe('User-token verification; absent = the data API answers 503 (needs [cloud] too)'),
  });

export type ApiConfig = z.output<ReturnType<typeof apiSection>>;
