import { z } from 'zod';
import { filePath, httpsUrl, identifier, intRange } from '../../lib/config/fields.js';
import { resolveFrom } from '../../lib/config/load.js';

/** `[cloud]` of agent.toml: the cloud API the fort authorises users with (HTTPS + JWT). */
export const cloudSection = () =>
  z.strictObject({
    url: httpsUrl().describe('Cloud API base URL, e.g. https://tenant.eu.fort.cloud'),
    ca: filePath()
      .optional()
      .describe("CA bundle the cloud's server certificate must chain to (default: system roots)"),
    client_id: identifier().optional().describe('OAuth client id registered for this fort (default: fort.id)'),
    private_key: filePath().describe(
      "The fort's private key (PEM; P-256 → ES256, Ed25519 → EdDSA) that signs client assertions; must be mode 0600",
    ),
    token_endpoint: httpsUrl()
      .optional()
      .describe("Token endpoint (default: <url>/oauth/token); also the assertion's audience"),
    timeout_seconds: intRange(1, 60).default(10).describe('Timeout of one cloud request'),
    retries: intRange(0, 5)
      .default(2)
      .describe(
        "Retries of a request that failed with 5xx, 429 or a network error: after the cloud's Retry-After on a 429/503 (1 s up to timeout_seconds), else backoff with jitter",
      ),
    decision_cache_size: intRange(100, 1_000_000)
      .default(10_000)
      .describe('Authorisation decisions kept (least recently used dropped)'),
  });

export type CloudConfig = z.output<ReturnType<typeof cloudSection>>;

export function resolveCloudPaths(dir: string, cloud: CloudConfig): CloudConfig {
  return {
    ...cloud,
    private_key: resolveFrom(dir, cloud.private_key),
    ...(cloud.ca ? { ca: resolveFrom(dir, cloud.ca) } : {}),
  };
}

/** An endpoint below the cloud's base URL, whether or not the base ends in a slash (or has a path). */
export function cloudEndpoint(base: string, path: string): URL {
  return new URL(path, base.endsWith('/') ? base : `${base}/`);
}
