import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { createRemoteJWKSet, customFetch, type JWTVerifyGetKey } from 'jose';
import { FortError } from '../../lib/errors.js';
import { createJsonClient } from '../../lib/https-json.js';
import type { Logger } from '../../lib/logger.js';
import { describeProxy, proxyAgentFor, type ProxySettings } from '../../lib/proxy.js';
import { createAuthorizer, type Authorizer } from './authorizer.js';
import { loadClientKey } from './client-key.js';
import { createCloudClient, type CloudClient } from './client.js';
import { cloudEndpoint, type CloudConfig } from './config.js';

export interface CloudService {
  client: CloudClient;
  authorizer: Authorizer;
  /** The user-token keys (JWKS), fetched over the same verified (and proxied) HTTPS. */
  userKeys(opts: { url: URL; cooldownSeconds: number; cacheSeconds: number }): JWTVerifyGetKey;
  close(): void;
}

/** The fort's side of the cloud API: one agent (cloud CA, proxy) for tokens, decisions and keys. */
export function startCloudService(deps: {
  config: CloudConfig;
  fortId: string;
  proxy?: ProxySettings | undefined;
  log: Logger;
}): CloudService {
  const { config, log } = deps;
  const base = new URL(config.url);
  const ca = config.ca ? readFileSync(config.ca) : undefined;
  const tunnel = proxyAgentFor(base, deps.proxy, ca ? { ca } : {});
  if (tunnel && deps.proxy) log.info(describeProxy(deps.proxy), 'cloud API goes through the HTTP proxy');
  const agent = tunnel ?? new Agent({ ...(ca ? { ca } : {}), keepAlive: true, maxSockets: 16 });
  const timeoutMs = config.timeout_seconds * 1000;
  const client = createCloudClient({
    baseUrl: base,
    tokenEndpoint: config.token_endpoint ? new URL(config.token_endpoint) : cloudEndpoint(config.url, 'oauth/token'),
    clientId: config.client_id ?? deps.fortId,
    signingKey: loadClientKey(config.private_key),
    agent,
    timeoutMs,
    retries: config.retries,
    log: log.child({ module: 'cloud-client' }),
  });
  const authorizer = createAuthorizer({
    ask: (q) => client.authorize(q),
    maxEntries: config.decision_cache_size,
    log: log.child({ module: 'authorizer' }),
  });
  const jwksFailure = changeLogger(
    log.child({ module: 'cloud-jwks' }),
    'cloud JWKS unreachable: user tokens cannot be checked',
    'cloud JWKS reachable again',
  );
  const jwksHttp = createJsonClient({
    agent,
    timeoutMs,
    peer: `cloud JWKS ${base.host}`,
    errorCode: 'FORT_ERR_UPSTREAM',
  });

  return {
    client,
    authorizer,
    userKeys: ({ url, cooldownSeconds, cacheSeconds }) =>
      createRemoteJWKSet(url, {
        cooldownDuration: cooldownSeconds * 1000,
        cacheMaxAge: cacheSeconds * 1000,
        timeoutDuration: timeoutMs,
        // jose fetches with the global fetch, which knows neither our CA nor the proxy.
        [customFetch]: async (href) => {
          try {
            const res = await jwksHttp.send(new URL(href));
            if (res.statusCode !== 200)
              throw new FortError('FORT_ERR_UPSTREAM', `cloud JWKS ${base.host} answered ${res.statusCode}`, {
                fatal: false,
              });
            jwksFailure.ok();
            return new Response(res.text, {
              status: res.statusCode,
              headers: { 'content-type': String(res.headers['content-type'] ?? 'application/json') },
            });
          } catch (err) {
            jwksFailure.failed(err as Error);
            throw err;
          }
        },
      }),
    close: () => agent.destroy(),
  };
}

/**
 * Logs a failing dependency when it starts failing, when the reason changes, and at most once a
 * minute while it keeps failing with the same reason: every user request retries the fetch, and
 * one log line per request would drown the journal. Recovery is logged once.
 */
function changeLogger(log: Logger, failingMsg: string, recoveredMsg: string, everyMs = 60_000) {
  let last: { reason: string; at: number } | undefined;
  return {
    failed(err: Error) {
      const reason = err.message;
      if (last && last.reason === reason && Date.now() - last.at < everyMs) return;
      last = { reason, at: Date.now() };
      log.warn({ reason, code: (err as { code?: string }).code }, failingMsg);
    },
    ok() {
      if (!last) return;
      last = undefined;
      log.info(recoveredMsg);
    },
  };
}
