#!/usr/bin/env node
import { bootDaemon } from '../lib/daemon.js';
import { loadTlsMaterial } from '../lib/tls.js';
import { createAdminClient } from '../lib/admin-client.js';
import { readReleaseInfo } from '../lib/version.js';
import { loadDeploymentManagerConfig } from './config.js';
import { createStateFile } from './state.js';
import { createAgentMonitor } from './agent-monitor.js';

/** Composition root: config → state file → agent monitor → READY. */
const { config, log, notifier, lifecycle, start } = bootDaemon({
  name: 'fort-deployment-manager',
  configEnvVar: 'FORT_DM_CONFIG',
  defaultConfig: '/etc/fort/deployment-manager.toml',
  load: loadDeploymentManagerConfig,
});

await start(async () => {
  const tls = loadTlsMaterial(config.agent.tls);
  const state = createStateFile(config.state.path).load();
  log.info({ step: state.step, installed: state.installed, deploymentId: state.deployment?.id }, 'update state loaded');

  const client = createAdminClient({ url: config.agent.admin_url, tls, timeoutMs: config.agent.timeout_seconds * 1000 });
  const monitor = createAgentMonitor({ client, intervalMs: config.agent.health_interval_seconds * 1000, log: log.child({ module: 'agent-monitor' }) });
  lifecycle.add({
    name: 'agent-monitor',
    stop: async () => {
      await monitor.stop();
      client.close();
    },
  });
  const first = await monitor.check();
  monitor.start();

  log.info({ version: readReleaseInfo().version, agent: first.kind }, 'fort-deployment-manager ready');
  notifier.ready(`watching agent at ${config.agent.admin_url} (agent ${first.kind})`);
  notifier.startWatchdog();
});
