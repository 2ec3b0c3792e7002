import { dirname, join } from 'node:path';
import { z } from 'zod';
import { loadTomlConfig, resolveFrom, resolveTlsFrom } from '../lib/config/load.js';
import {
  filePath,
  host,
  identifier,
  intRange,
  lifecycleSection,
  logSection,
  port,
  tlsFiles,
} from '../lib/config/fields.js';
import { proxySection, resolveProxyPaths } from '../lib/proxy.js';
import { iotSection, resolveIotPaths } from './iot/config.js';
import { apiSection, authSection } from './api/config.js';
import { ConfigError } from '../lib/errors.js';
import { UNPAIRED } from '../lib/config/views.js';
import { identityFiles, readIdentity, type FortIdentity, type IdentityFiles } from './pairing/identity.js';
import { cloudSection, resolveCloudPaths } from './cloud/config.js';
import { reloadsSection, resolveReloadsPaths } from './reloads/config.js';
import { engineSection, resolveEnginePaths } from './engine/config.js';

const pairingSection = () =>
  z
    .strictObject({
      dir: filePath()
        .optional()
        .describe(
          "Where pairing keeps this fort's keys and identity (default: pairing/ beside store.path); writable by the agent",
        ),
      ca: filePath()
        .optional()
        .describe("CA bundle the pairing endpoint's certificate must chain to (default: system roots)"),
      timeout_seconds: intRange(1, 120).default(30).describe('Timeout of the pairing request'),
    })
    .default({ timeout_seconds: 30 })
    .describe("Pairing (fortctl pair): a one-time code → this fort's cloud identity");

/** fort-agent configuration (agent.toml). Relative paths are relative to the file. */
export const agentConfigSchema = z
  .strictObject({
    fort: z
      .strictObject({
        id: identifier()
          .optional()
          .describe(
            "This fort's id, as registered in the cloud; also the MQTT client id. Absent: the id pairing gave (fortctl pair)",
          ),
      })
      .default({}),
    log: logSection(),
    store: z.strictObject({
      path: filePath().describe('SQLite database file (created 0600)'),
      audit_path: filePath().optional().describe('Audit trail database (created 0600); default: audit.db beside path'),
      audit_retention_days: intRange(1, 3650)
        .default(90)
        .describe('Audit entries older than this are deleted (checked hourly)'),
      disk_min_free_mib: intRange(0, 1_048_576)
        .default(256)
        .describe('Free space the data directory keeps: below it new reloads are refused (FORT_ERR_DISK_LOW)'),
      disk_warn_free_percent: intRange(0, 99)
        .default(10)
        .describe('Below this share of free space the disk health module is degraded (the cloud sees it coming)'),
      audit_max_mib: intRange(1, 1_048_576)
        .default(256)
        .describe(
          'Space the audit entries may use; past it the oldest are deleted (checked every minute), whatever their age',
        ),
    }),
    admin: z.strictObject({
      host: host().default('127.0.0.1').describe('Address of the trust-zone admin API; keep it on loopback'),
      port: port().describe('Port of the trust-zone admin API'),
      tls: tlsFiles().describe("Trust-zone material: ca = the installation's trust-zone root only"),
      allowed_clients: z
        .array(identifier(), { error: 'expected a list of certificate common names' })
        .min(1, { error: 'expected at least one allowed client' })
        .default(['fortctl', 'deployment-manager'])
        .describe('Common names of trust-zone client certificates allowed to call the admin API'),
    }),
    api: apiSection(),
    reloads: reloadsSection(),
    engine: engineSection()
      .optional()
      .describe('fort-engine (trust zone): loads and serves app data; absent = the agent does it itself'),
    lifecycle: lifecycleSection(),
    iot: iotSection().optional().describe('IoT link to the cloud (MQTT over WSS, SigV4); absent = link disabled'),
    cloud: cloudSection().optional().describe('Cloud API (HTTPS + JWT client assertion): authorises user actions'),
    proxy: proxySection()
      .optional()
      .describe('HTTP proxy (CONNECT) for the outbound links; absent = $HTTPS_PROXY / $NO_PROXY decide'),
    pairing: pairingSection(),
  })
  .superRefine((c, ctx) => {
    if (c.api.auth && !c.cloud)
      ctx.addIssue({
        code: 'custom',
        path: ['api', 'auth'],
        message: 'needs a [cloud] section: the cloud authorises every user action',
      });
  });

type ParsedAgentConfig = z.output<typeof agentConfigSchema>;
/**
 * As loaded: paths absolute, the audit database's path filled in, and the sections pairing
 * provides ([iot], [cloud], [api.auth]) filled from the identity where agent.toml has none.
 */
export type AgentConfig = Omit<ParsedAgentConfig, 'store' | 'fort' | 'pairing'> & {
  store: ParsedAgentConfig['store'] & { audit_path: string };
  /** `unpaired` until [fort] id is set or the fort is paired. */
  fort: { id: string };
  pairing: ParsedAgentConfig['pairing'] & { dir: string };
  identity: FortIdentity | undefined;
};

/** Load and validate agent.toml; file paths come back absolute. */
export function loadAgentConfig(file: string): AgentConfig {
  const { dir, config } = loadTomlConfig(file, agentConfigSchema);
  const pairingDir = resolveFrom(dir, config.pairing.dir ?? join(dirname(config.store.path), 'pairing'));
  const identity = readIdentityOrThrow(pairingDir);
  const paired: Partial<ReturnType<typeof fromIdentity>> = identity
    ? fromIdentity(identity, identityFiles(pairingDir))
    : {};
  const resolved = {
    ...config,
    store: {
      ...config.store,
      path: resolveFrom(dir, config.store.path),
      audit_path: resolveFrom(dir, config.store.audit_path ?? join(dirname(config.store.path), 'audit.db')),
    },
    admin: { ...config.admin, tls: resolveTlsFrom(dir, config.admin.tls) },
    api: { ...config.api, tls: resolveTlsFrom(dir, config.api.tls) },
    iot: config.iot && resolveIotPaths(dir, config.iot),
    cloud: config.cloud && resolveCloudPaths(dir, config.cloud),
    proxy: config.proxy && resolveProxyPaths(dir, config.proxy),
    reloads: resolveReloadsPaths(dir, config.reloads),
    engine: config.engine && resolveEnginePaths(dir, config.engine),
  };
  return {
    ...resolved,
    fort: { id: config.fort.id ?? identity?.fort_id ?? UNPAIRED },
    pairing: {
      ...config.pairing,
      dir: pairingDir,
      ...(config.pairing.ca ? { ca: resolveFrom(dir, config.pairing.ca) } : {}),
    },
    identity,
    // What agent.toml says wins: pairing fills in only what it leaves out.
    iot: resolved.iot ?? paired.iot,
    cloud: resolved.cloud ?? paired.cloud,
    api: {
      ...resolved.api,
      auth: resolved.api.auth ?? paired.auth,
      cors_origins: resolved.api.cors_origins.length > 0 ? resolved.api.cors_origins : (paired.corsOrigins ?? []),
    },
  };
}

/** The fort id of a fort that is neither configured with one nor paired (fortctl doctor knows it too). */
export { UNPAIRED };

function readIdentityOrThrow(dir: string): FortIdentity | undefined {
  try {
    return readIdentity(dir);
  } catch (err) {
    throw new ConfigError('pairing', [
      `${dir}/identity.json is unreadable (${(err as Error).message.split('\n')[0]}); pair again after removing ${dir}`,
    ]);
  }
}

/** The [iot], [cloud] and [api.auth] a paired fort runs with, parsed like agent.toml's own. */
function fromIdentity(id: FortIdentity, f: IdentityFiles) {
  return {
    iot: id.iot
      ? iotSection().parse({
          endpoint: id.iot.endpoint,
          region: id.iot.region,
          thing_name: id.thing_name,
          ca: f.serverCa,
          credentials: {
            source: 'provider',
            url: id.iot.credentials_url,
            role_alias: id.iot.role_alias,
            tls: { ca: f.serverCa, cert: f.deviceCert, key: f.deviceKey },
          },
        })
      : undefined,
    cloud: cloudSection().parse({
      url: id.cloud.url,
      ca: f.serverCa,
      client_id: id.client_id,
      private_key: f.jwtKey,
      token_endpoint: id.cloud.token_endpoint,
    }),
    auth: authSection().parse({
      issuer: id.user_tokens.issuer,
      audience: id.user_tokens.audience,
      tenant: id.tenant,
      jwks_url: id.user_tokens.jwks_url,
    }),
    corsOrigins: id.cors_origins,
  };
}
