#!/usr/bin/env node
import { createLogger } from '../lib/logger.js';
import { createNotifier } from '../lib/sd-notify.js';
import { readRuntimeEnv } from '../lib/runtime-env.js';
import { createLifecycle } from '../lib/lifecycle.js';
import { loadTlsMaterial } from '../lib/tls.js';
import { readReleaseInfo } from '../lib/version.js';
import { failStart } from '../lib/process-main.js';
import { parseDaemonArgs } from '../lib/daemon-args.js';
import { loadAgentConfig, type AgentConfig } from './config.js';
import { openStore } from './store/database.js';
import { createHealthRegistry } from './health.js';
import { startAdminServer } from './admin/server.js';
import { startClientApi } from './api/server.js';

const NAME = 'fort-agent';

/** Composition root: config → logger → store → client API → admin API → READY. */
async function main(): Promise<void> {
  const runtime = readRuntimeEnv('FORT_AGENT_CONFIG');
  const opts = parseDaemonArgs(process.argv, NAME, 'agent.toml (default: $FORT_AGENT_CONFIG or /etc/fort/agent.toml)');
  const configFile = opts.config ?? runtime.configFile ?? '/etc/fort/agent.toml';

  let config: AgentConfig;
  try {
    config = loadAgentConfig(configFile);
  } catch (err) {
    failStart(NAME, err);
  }

  const startedAt = new Date();
  const release = readReleaseInfo();
  const log = createLogger({ level: config.log.level, name: NAME });
  const notifier = createNotifier(runtime.notify, log.child({ module: 'sd-notify' }));
  const lifecycle = createLifecycle({
    log,
    notifier,
    stopTimeoutMs: config.lifecycle.stop_timeout_seconds * 1000,
    exit: (code) => process.exit(code),
  });
  lifecycle.installSignalHandlers();
  const health = createHealthRegistry();

  try {
    const adminTls = loadTlsMaterial(config.admin.tls);
    const apiTls = loadTlsMaterial(config.api.tls);

    const store = openStore({ path: config.store.path, log: log.child({ module: 'store' }) });
    lifecycle.add({ name: 'store', stop: async () => store.close() });
    health.set('store', 'ready', `schema v${store.schemaVersion}`);

    const clientApi = await startClientApi({
      host: config.api.host,
      port: config.api.port,
      tls: apiTls,
      isDraining: () => health.draining,
      log: log.child({ module: 'client-api' }),
    });
    lifecycle.add({ name: 'client-api', stop: () => clientApi.close() });
    health.set('client-api', 'ready', `https://${config.api.host}:${config.api.port}`);

    const admin = await startAdminServer({
      host: config.admin.host,
      port: config.admin.port,
      tls: adminTls,
      allowedClients: config.admin.allowed_clients,
      health,
      info: () => ({ version: release.version, fortId: config.fort.id, schemaVersion: store.schemaVersion, startedAt }),
      drain: (by) => {
        health.setDraining();
        void lifecycle.shutdown(`drain requested by ${by}`, 0);
      },
      log: log.child({ module: 'admin-api' }),
    });
    lifecycle.add({ name: 'admin-api', stop: () => admin.close() });
    health.set('admin-api', 'ready', `https://${config.admin.host}:${config.admin.port}`);

    const readyMs = Date.now() - startedAt.getTime();
    log.info({ version: release.version, fortId: config.fort.id, readyMs }, 'fort-agent ready');
    notifier.ready(`serving: client API ${config.api.host}:${config.api.port}, admin API ${config.admin.host}:${config.admin.port}`);
    notifier.startWatchdog(() => health.snapshot().live);
  } catch (err) {
    notifier.close();
    failStart(NAME, err, log);
  }
}

await main();
