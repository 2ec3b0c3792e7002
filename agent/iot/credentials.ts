import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { z } from 'zod';
import { assertPrivateFileMode } from '../../lib/files.js';
import { ConfigError, FortError } from '../../lib/errors.js';
import { createJsonClient } from '../../lib/https-json.js';
import { fullJitterDelay } from '../../lib/backoff.js';
import { describeProxy, proxyAgentFor, type ProxySettings } from '../../lib/proxy.js';
import type { Logger } from '../../lib/logger.js';
import type { TlsMaterial } from '../../lib/tls.js';
import type { AwsCredentials } from './presign.js';

export interface CredentialSource {
  /** Current credentials; refreshes first when they are missing or close to expiry. */
  get(): Promise<AwsCredentials>;
  /** The bridge refused them (e.g. after its restart): fetch new ones on the next get(). */
  invalidate(): void;
  /** Offset of our clock against the provider's `Date` header, ms (positive: we are ahead). */
  clockSkewMs(): number | undefined;
}

const staticFileSchema = z.object({ accessKeyId: z.string().min(16), secretAccessKey: z.string().min(16) });

/** Access key + secret from a 0600 JSON file (`{"accessKeyId", "secretAccessKey"}`). */
export function staticCredentials(file: string): CredentialSource {
  assertPrivateFileMode(file, 'credentials file');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    raw = undefined;
  }
  const parsed = staticFileSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(file, ['expected JSON {"accessKeyId": "...", "secretAccessKey": "..."}']);
  const creds = parsed.data;
  return { get: async () => creds, invalidate: () => {}, clockSkewMs: () => undefined };
}

const providerResponse = z.object({
  credentials: z.object({
    accessKeyId: z.string(),
    secretAccessKey: z.string(),
    sessionToken: z.string(),
    expiration: z.string(),
  }),
});

export interface ProviderOptions {
  /** https://<prefix>.credentials.iot.<region>.amazonaws.com */
  url: string;
  roleAlias: string;
  thingName: string;
  /** Device certificate + key, and the CA the provider's server certificate must chain to. */
  tls: TlsMaterial;
  /** HTTP proxy to tunnel through (CONNECT), unless its no_proxy list exempts the provider. */
  proxy?: ProxySettings;
  refreshBeforeSeconds: number;
  timeoutMs: number;
  log: Logger;
  now?: () => Date;
  random?: () => number;
}

/**
 * AWS IoT credentials provider over mutual TLS with the device certificate. Single-flight
 * refresh ahead of expiry (jittered so a fleet does not refresh in step); the old
 * credentials stay in use until new ones arrive.
 */
export function credentialsProvider(opts: ProviderOptions): CredentialSource {
  const now = opts.now ?? (() => new Date());
  const random = opts.random ?? Math.random;
  let current: AwsCredentials | undefined;
  let refreshAt = 0;
  let inflight: Promise<AwsCredentials> | undefined;
  let skewMs: number | undefined;
  let failures = 0;
  // The mutual TLS with the device certificate happens inside the tunnel, end to end.
  const tls = { ...(opts.tls.ca ? { ca: opts.tls.ca } : {}), cert: opts.tls.cert, key: opts.tls.key };
  const base = new URL(opts.url);
  const tunnel = proxyAgentFor(base, opts.proxy, tls);
  if (tunnel && opts.proxy)
    opts.log.info(describeProxy(opts.proxy), 'IoT credentials provider goes through the HTTP proxy');
  const http = createJsonClient({
    agent: tunnel ?? new Agent({ ...tls, keepAlive: true, maxSockets: 1 }),
    timeoutMs: opts.timeoutMs,
    peer: `IoT credentials provider ${base.host}`,
    errorCode: 'FORT_ERR_UPSTREAM',
  });
  const credentialsUrl = new URL(
    `${base.pathname.replace(/\/$/, '')}/role-aliases/${encodeURIComponent(opts.roleAlias)}/credentials`,
    base,
  );

  const fetchOnce = async (): Promise<AwsCredentials> => {
    const res = await http.send(credentialsUrl, { headers: { 'x-amzn-iot-thingname': opts.thingName } });
    const date = res.headers.date ? Date.parse(res.headers.date) : NaN;
    if (Number.isFinite(date)) skewMs = now().getTime() - date;
    if (res.statusCode !== 200)
      throw new FortError('FORT_ERR_UPSTREAM', `IoT credentials provider answered ${res.statusCode}`, { fatal: false });
    const body = providerResponse.parse(http.json(res));
    const expiration = new Date(body.credentials.expiration);
    const lifetime = expiration.getTime() - now().getTime();
    // Refresh ahead of expiry, jittered over part of the margin.
    const ahead = Math.min(opts.refreshBeforeSeconds * 1000, lifetime / 2);
    refreshAt = expiration.getTime() - ahead - random() * ahead * 0.2;
    opts.log.info({ expiration: expiration.toISOString(), clockSkewMs: skewMs }, 'IoT credentials refreshed');
    return {
      accessKeyId: body.credentials.accessKeyId,
      secretAccessKey: body.credentials.secretAccessKey,
      sessionToken: body.credentials.sessionToken,
      expiration,
    };
  };

  const refresh = (): Promise<AwsCredentials> => {
    inflight ??= fetchOnce()
      .then((c) => {
        failures = 0;
        current = c;
        return c;
      })
      .catch((err: unknown) => {
        failures += 1;
        refreshAt = now().getTime() + fullJitterDelay(failures, { baseMs: 1000, capMs: 60_000, floorMs: 1000 }, random);
        opts.log.warn({ err: (err as Error).message, failures }, 'IoT credentials refresh failed');
        // Not yet expired: keep using what we have.
        if (current?.expiration && current.expiration.getTime() > now().getTime()) return current;
        throw err;
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  };

  return {
    async get() {
      if (!current || now().getTime() >= refreshAt) return refresh();
      return current;
    },
    invalidate() {
      current = undefined;
    },
    clockSkewMs: () => skewMs,
  };
}
