#!/usr/bin/env node
import { bootDaemon } from '../lib/daemon.js';
import { loadTlsMaterial } from '../lib/tls.js';
import { reloadOnSighup } from '../lib/tls-reload.js';
import { createLogLevelControl } from '../lib/log-level.js';
import { readReleaseInfo } from '../lib/version.js';
import { loadDeploymentManagerConfig } from './config.js';
import { createAgentMonitor } from './agent-link/monitor.js';
import { loadArtifactKeyFiles } from './artifact/keys.js';
import { wireDeploymentManager } from './wiring.js';

/** Composition root: config → wiring (admin client, state file) → agent monitor → updates → READY. */
const { config, log, notifier, lifecycle, runtime, start } = bootDaemon({
  name: 'fort-deployment-manager',
  configEnvVar: 'FORT_DM_CONFIG',
  defaultConfig: '/etc/fort/deployment-manager.toml',
  load: loadDeploymentManagerConfig,
});

const sighup = reloadOnSighup(log);

await start(async () => {
  const wiring = wireDeploymentManager(config, { log, proxyEnv: runtime.proxy });
  const { admin, reporter, stateFile } = wiring;
  // A renewed client certificate (fortctl certs renew, then systemctl reload): used from the next call on.
  sighup.set(() => {
    admin.reloadTls(loadTlsMaterial(config.agent.tls));
    log.info({ file: config.agent.tls.cert }, 'trust-zone client certificate reloaded');
  });
  const state = stateFile.load();
  log.info({ step: state.step, installed: state.installed, deploymentId: state.deployment?.id }, 'update state loaded');

  // Refused here, before READY, whatever starts the update service later (paired: after pairing).
  if (config.updates) loadArtifactKeyFiles(config.updates.artifact_keys);

  // Each good health check may report the update state again (the agent keeps it in memory), and
  // tells a paired DM which fort it belongs to now.
  let follower: { agentIs(fortId: string): void } | undefined;
  let agentFortId: string | undefined;
  // `fortctl log-level --service deployment-manager`: asked through the agent, which it polls.
  const logLevel = createLogLevelControl({ logger: log, configured: config.log.level });
  lifecycle.add({ name: 'log-level', stop: async () => logLevel.stop() });
  const monitor = createAgentMonitor({
    client: admin,
    intervalMs: config.agent.health_interval_seconds * 1000,
    log: log.child({ module: 'agent-monitor' }),
    onHealthy: (h) => {
      logLevel.follow(h.logLevels?.['deployment-manager']);
      reporter.agentHealthy(h);
      agentFortId = h.fortId;
      follower?.agentIs(h.fortId);
    },
  });
  lifecycle.add({
    name: 'agent-monitor',
    stop: async () => {
      await monitor.stop();
      admin.close();
    },
  });
  const first = await monitor.check();
  let markReady = () => {};
  const ready = new Promise<void>((r) => (markReady = r));
  monitor.start();

  if (config.updates) {
    const updatesConfig = config.updates;
    // Loaded only when configured: the artifact reader and Mender client are not needed otherwise.
    const createUpdates = await wiring.updateServices();
    const startUpdates = (cfg: typeof updatesConfig, onAdmission?: (admitted: boolean) => void) => {
      const updates = createUpdates(cfg, { log: log.child({ module: 'updates' }), onAdmission, whenReady: ready });
      updates.start();
      return updates;
    };
    const paired = updatesConfig.paired;
    if (!paired) {
      const updates = startUpdates(updatesConfig);
      lifecycle.add({ name: 'updates', stop: () => updates.stop() });
    } else {
      // The update server and this process's certificate come with pairing: asked for through
      // the agent (in the background: READY does not wait for an operator to pair the fort), and
      // asked for again when the fort's identity moves on (unpair, a new pairing).
      const { followUpdateIdentity } = await import('./agent-link/update-identity.js');
      const dir = paired.identity_dir;
      if (!dir) throw new Error('updates.paired.identity_dir is filled in by the config loader');
      const following = followUpdateIdentity({
        dir,
        admin,
        retryMs: paired.retry_seconds * 1000,
        log: log.child({ module: 'update-identity' }),
        agentFortId,
        start: (id, onAdmission) => {
          const server = id.url
            ? {
                url: id.url,
                tls: { ca: id.files.ca, cert: id.files.cert, key: id.files.key },
                auth_key: id.files.authKey,
                id_data: { fort_id: id.fortId },
                poll_seconds: paired.poll_seconds,
                inventory_seconds: paired.inventory_seconds,
                retry_seconds: paired.retry_seconds,
                timeout_seconds: paired.timeout_seconds,
              }
            : undefined;
          if (!server) log.warn('the cloud has no update server for this fort: only install FILE updates it');
          return startUpdates({ ...updatesConfig, ...(server ? { server } : {}) }, onAdmission);
        },
      });
      follower = following;
      lifecycle.add({ name: 'updates', stop: () => following.stop() });
    }
  }

  log.info({ version: readReleaseInfo().version, agent: first.kind }, 'fort-deployment-manager ready');
  notifier.ready(`watching agent at ${config.agent.admin_url} (agent ${first.kind})`);
  notifier.startWatchdog();
  markReady();
});
