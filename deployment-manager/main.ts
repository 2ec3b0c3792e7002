#!/usr/bin/env node
import { createLogger } from '../lib/logger.js';
import { createNotifier } from '../lib/sd-notify.js';
import { readRuntimeEnv } from '../lib/runtime-env.js';
import { createLifecycle } from '../lib/lifecycle.js';
import { loadTlsMaterial } from '../lib/tls.js';
import { createAdminClient } from '../lib/admin-client.js';
import { readReleaseInfo } from '../lib/version.js';
import { failStart } from '../lib/process-main.js';
import { parseDaemonArgs } from '../lib/daemon-args.js';
import { loadDeploymentManagerConfig, type DeploymentManagerConfig } from './config.js';
import { createStateFile } from './state.js';
import { createAgentMonitor } from './agent-monitor.js';

const NAME = 'fort-deployment-manager';

/** Composition root: config → state file → agent monitor → READY. */
async function main(): Promise<void> {
  const runtime = readRuntimeEnv('FORT_DM_CONFIG');
  const opts = parseDaemonArgs(process.argv, NAME, 'deployment-manager.toml (default: $FORT_DM_CONFIG or /etc/fort/deployment-manager.toml)');
  const configFile = opts.config ?? runtime.configFile ?? '/etc/fort/deployment-manager.toml';

  let config: DeploymentManagerConfig;
  try {
    config = loadDeploymentManagerConfig(configFile);
  } catch (err) {
    failStart(NAME, err);
  }

  const log = createLogger({ level: config.log.level, name: NAME });
  const notifier = createNotifier(runtime.notify, log.child({ module: 'sd-notify' }));
  const lifecycle = createLifecycle({ log, notifier, stopTimeoutMs: config.lifecycle.stop_timeout_seconds * 1000, exit: (c) => process.exit(c) });
  lifecycle.installSignalHandlers();

  try {
    const tls = loadTlsMaterial(config.agent.tls);
    const state = createStateFile(config.state.path).load();
    log.info({ step: state.step, installed: state.installed, deploymentId: state.deploymentId }, 'update state loaded');

    const client = createAdminClient({ url: config.agent.admin_url, tls, timeoutMs: config.agent.timeout_seconds * 1000 });
    const monitor = createAgentMonitor({ client, intervalMs: config.agent.health_interval_seconds * 1000, log: log.child({ module: 'agent-monitor' }) });
    lifecycle.add({ name: 'agent-monitor', stop: async () => { await monitor.stop(); client.close(); } });
    const first = await monitor.check();
    monitor.start();

    log.info({ version: readReleaseInfo().version, agent: first.kind }, 'fort-deployment-manager ready');
    notifier.ready(`watching agent at ${config.agent.admin_url} (agent ${first.kind})`);
    notifier.startWatchdog();
  } catch (err) {
    notifier.close();
    failStart(NAME, err, log);
  }
}

await main();
