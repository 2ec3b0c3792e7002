import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { createRemoteJWKSet, customFetch, type JWTVerifyGetKey } from 'jose';
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
export function startCloudService(deps: { config: CloudConfig; fortId: string; proxy?: ProxySettings | undefined; log: Logger }): CloudService {
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
  const authorizer = createAuthorizer({ ask: (q) => client.authorize(q), maxEntries: config.decision_cache_size, log: log.child({ module: 'authorizer' }) });
  const jwksHttp = createJsonClient({ agent, timeoutMs, peer: `cloud JWKS ${base.host}`, errorCode: 'FORT_ERR_UPSTREAM' });

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
          const res = await jwksHttp.send(new URL(href));
          return new Response(res.text, { status: res.statusCode, headers: { 'content-type': String(res.headers['content-type'] ?? 'application/json') } });
        },
      }),
    close: () => agent.destroy(),
  };
}
