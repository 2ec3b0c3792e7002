import { z } from 'zod';
import { loadTomlConfig, resolveFrom } from '../lib/config/load.js';
import { filePath, host, identifier, intRange, logLevel, port, tlsFiles } from '../lib/config/fields.js';

/** fort-agent configuration (agent.toml). Relative paths are relative to the file. */
export const agentConfigSchema = z.strictObject({
  fort: z.strictObject({
    id: identifier().describe('This fort\'s id, as registered in the cloud; also the MQTT client id'),
  }),
  log: z.strictObject({
    level: logLevel().default('info').describe('pino log level'),
  }).default({ level: 'info' }),
  store: z.strictObject({
    path: filePath().describe('SQLite database file (created 0600)'),
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
  api: z.strictObject({
    host: host().default('127.0.0.1').describe('Address of the client-zone HTTPS API (the private network interface)'),
    port: port().describe('Port of the client-zone HTTPS API'),
    tls: z.strictObject({
      cert: filePath().describe('Server certificate from the client-zone CA (leaf first, then intermediates)'),
      key: filePath().describe('Its private key; must be mode 0600'),
    }),
  }),
  lifecycle: z.strictObject({
    stop_timeout_seconds: intRange(1, 600).default(10).describe('Longest a graceful stop or drain may take before the process exits anyway'),
  }).default({ stop_timeout_seconds: 10 }),
});

export type AgentConfig = z.output<typeof agentConfigSchema>;

/** Load and validate agent.toml; file paths come back absolute. */
export function loadAgentConfig(file: string): AgentConfig {
  const { dir, config } = loadTomlConfig(file, agentConfigSchema);
  const abs = (p: string) => resolveFrom(dir, p);
  return {
    ...config,
    store: { path: abs(config.store.path) },
    admin: { ...config.admin, tls: { ca: abs(config.admin.tls.ca), cert: abs(config.admin.tls.cert), key: abs(config.admin.tls.key) } },
    api: { ...config.api, tls: { cert: abs(config.api.tls.cert), key: abs(config.api.tls.key) } },
  };
}
