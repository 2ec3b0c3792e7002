#!/usr/bin/env node
import { bootDaemon } from '../lib/daemon.js';
import { loadTlsMaterial } from '../lib/tls.js';
import { createAdminClient } from '../lib/admin-client.js';
import { readReleaseInfo } from '../lib/version.js';
import { loadDeploymentManagerConfig } from './config.js';
import { createStateFile } from './state.js';
import { createAgentMonitor } from './agent-monitor.js';
import { resolveProxy } from '../lib/proxy.js';

/** Composition root: config → state file → agent monitor → READY. */
const { config, log, notifier, lifecycle, runtime, start } = bootDaemon({
  name: 'fort-deployment-manager',
  configEnvVar: 'FORT_DM_CONFIG',
  defaultConfig: '/etc/fort/deployment-manager.toml',
  load: loadDeploymentManagerConfig,
});

await start(async () => {
  const tls = loadTlsMaterial(config.agent.tls);
  const stateFile = createStateFile(config.state.path);
  const state = stateFile.load();
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

  if (config.updates) {
    // Loaded only when configured: the artifact reader and Mender client are not needed otherwise.
    const { createUpdateService } = await import('./update-service.js');
    const { createWorkLock } = await import('./work-lock.js');
    const updates = createUpdateService({ config: config.updates, state: stateFile, initial: state, lock: createWorkLock(`${config.state.path}.lock`), admin: client, proxy: resolveProxy(undefined, runtime.proxy), log: log.child({ module: 'updates' }) });
    lifecycle.add({ name: 'updates', stop: () => updates.stop() });
    updates.start();
  }

  log.info({ version: readReleaseInfo().version, agent: first.kind }, 'fort-deployment-manager ready');
  notifier.ready(`watching agent at ${config.agent.admin_url} (agent ${first.kind})`);
  notifier.startWatchdog();
});
