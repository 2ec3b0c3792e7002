import { z } from 'zod';
import { loadTomlConfig, resolveFrom, resolveTlsFrom } from '../lib/config/load.js';
import { filePath, httpsUrl, intRange, lifecycleSection, logSection, tlsFiles } from '../lib/config/fields.js';

/** fort-deployment-manager configuration (deployment-manager.toml). */
export const deploymentManagerConfigSchema = z.strictObject({
  log: logSection(),
  state: z.strictObject({
    path: filePath().describe('JSON state file of the update state machine (written temp → fsync → rename)'),
  }),
  agent: z.strictObject({
    admin_url: httpsUrl().describe('URL of the agent admin API, e.g. https://127.0.0.1:8444'),
    health_interval_seconds: intRange(1, 3600).default(30).describe('How often the agent is health-checked'),
    timeout_seconds: intRange(1, 120).default(5).describe('Timeout of one admin API call'),
    tls: tlsFiles().describe('ca = trust-zone root; cert/key = the deployment-manager client certificate'),
  }),
  lifecycle: lifecycleSection(),
});

export type DeploymentManagerConfig = z.output<typeof deploymentManagerConfigSchema>;

export function loadDeploymentManagerConfig(file: string): DeploymentManagerConfig {
  const { dir, config } = loadTomlConfig(file, deploymentManagerConfigSchema);
  return {
    ...config,
    state: { path: resolveFrom(dir, config.state.path) },
    agent: { ...config.agent, tls: resolveTlsFrom(dir, config.agent.tls) },
  };
}
