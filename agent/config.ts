import { dirname, join } from 'node:path';
import { z } from 'zod';
import { loadTomlConfig, resolveFrom, resolveTlsFrom } from '../lib/config/load.js';
import { filePath, host, identifier, intRange, lifecycleSection, logSection, port, tlsFiles } from '../lib/config/fields.js';
import { proxySection, resolveProxyPaths } from '../lib/proxy.js';
import { iotSection, resolveIotPaths } from './iot/config.js';
import { apiSection } from './api/config.js';
import { cloudSection, resolveCloudPaths } from './cloud/config.js';
import { reloadsSection, resolveReloadsPaths } from './reloads/config.js';

/** fort-agent configuration (agent.toml). Relative paths are relative to the file. */
export const agentConfigSchema = z.strictObject({
  fort: z.strictObject({
    id: identifier().describe('This fort\'s id, as registered in the cloud; also the MQTT client id'),
  }),
  log: logSection(),
  store: z.strictObject({
    path: filePath().describe('SQLite database file (created 0600)'),
    audit_path: filePath().optional().describe('Audit trail database (created 0600); default: audit.db beside path'),
    audit_retention_days: intRange(1, 3650).default(90).describe('Audit entries older than this are deleted (checked hourly)'),
  }),
  admin: z.strictObject({
    host: host().default('127.0.0.1').describe('Address of the trust-zone admin API; keep it on loopback'),
    port: port().describe('Port of the trust-zone admin API'),
    tls: tlsFiles().describe('Trust-zone material: ca = the installation\'s trust-zone root only'),
    allowed_clients: z.array(identifier(), { error: 'expected a list of certificate common names' })
      .min(1, { error: 'expected at least one allowed client' })
      .default(['fortctl', 'deployment-manager'])
      .describe('Common names of trust-zone client certificates allowed to call the admin API'),
  }),
  api: apiSection(),
  reloads: reloadsSection(),
  lifecycle: lifecycleSection(),
  iot: iotSection().optional().describe('IoT link to the cloud (MQTT over WSS, SigV4); absent = link disabled'),
  cloud: cloudSection().optional().describe('Cloud API (HTTPS + JWT client assertion): authorises user actions'),
  proxy: proxySection().optional().describe('HTTP proxy (CONNECT) for the outbound links; absent = $HTTPS_PROXY / $NO_PROXY decide'),
}).superRefine((c, ctx) => {
  if (c.api.auth && !c.cloud) ctx.addIssue({ code: 'custom', path: ['api', 'auth'], message: 'needs a [cloud] section: the cloud authorises every user action' });
});

type ParsedAgentConfig = z.output<typeof agentConfigSchema>;
/** As loaded: paths absolute, the audit database's path filled in. */
export type AgentConfig = Omit<ParsedAgentConfig, 'store'> & { store: ParsedAgentConfig['store'] & { audit_path: string } };

/** Load and validate agent.toml; file paths come back absolute. */
export function loadAgentConfig(file: string): AgentConfig {
  const { dir, config } = loadTomlConfig(file, agentConfigSchema);
  return {
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
  };
}
