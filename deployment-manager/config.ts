import { z } from 'zod';
import { loadTomlConfig, resolveFrom } from '../lib/config/load.js';
import { filePath, httpsUrl, intRange, logLevel, tlsFiles } from '../lib/config/fields.js';

/** fort-deployment-manager configuration (deployment-manager.toml). */
export const deploymentManagerConfigSchema = z.strictObject({
  log: z.strictObject({
    level: logLevel().default('info').describe('pino log level'),
  }).default({ level: 'info' }),
  state: z.strictObject({
    path: filePath().describe('JSON state file of the update state machine (written temp → fsync → rename)'),
  }),
  agent: z.strictObject({
    admin_url: httpsUrl().describe('URL of the agent admin API, e.g. https://127.0.0.1:8444'),
    health_interval_seconds: intRange(1, 3600).default(30).describe('How often the agent is health-checked'),
    timeout_seconds: intRange(1, 120).default(5).describe('Timeout of one admin API call'),
    tls: tlsFiles().describe('ca = trust-zone root; cert/key = the deployment-manager client certificate'),
  }),
  lifecycle: z.strictObject({
    stop_timeout_seconds: intRange(1, 600).default(10).describe('Longest a graceful stop may take'),
  }).default({ stop_timeout_seconds: 10 }),
});

export type DeploymentManagerConfig = z.output<typeof deploymentManagerConfigSchema>;

export function loadDeploymentManagerConfig(file: string): DeploymentManagerConfig {
  const { dir, config } = loadTomlConfig(file, deploymentManagerConfigSchema);
  const abs = (p: string) => resolveFrom(dir, p);
  return {
    ...config,
    state: { path: abs(config.state.path) },
    agent: { ...config.agent, tls: { ca: abs(config.agent.tls.ca), cert: abs(config.agent.tls.cert), key: abs(config.agent.tls.key) } },
  };
}
