#!/usr/bin/env node
import { bootDaemon } from '../lib/daemon.js';
import { loadTlsMaterial } from '../lib/tls.js';
import { readReleaseInfo } from '../lib/version.js';
import { loadAgentConfig, UNPAIRED } from './config.js';
import { applyPendingRotation, identityFiles, removeUnfinished } from './pairing/identity.js';
import { startKeyRenewal } from './pairing/renewal.js';
import { createPairingOperations, type PairedCloudLink } from './pairing/operations.js';
import { openStore } from './store/database.js';
import { createHealthRegistry } from './health.js';
import { createClockHealth } from './clock-health.js';
import { readBuildDate } from '../lib/clock.js';
import { describeProxy, resolveProxy } from '../lib/proxy.js';
import { startAdminServer } from './admin/server.js';
import { createRequestedLevel } from './admin/log-level-routes.js';
import { createLogLevelControl } from '../lib/log-level.js';
import { createAuditReader } from './audit/reader.js';
import { openAuditStore } from './audit/store.js';
import { startClientApi } from './api/server.js';
import { dirname, join } from 'node:path';
import { createOutbox } from './events/outbox.js';
import { adminReloadOperations, startReloadService } from './reloads/service.js';
import { certificateInventory } from './cert-inventory.js';
import { reportedState } from './shadow/state.js';
import { startDiskSpace } from './disk.js';
import { createDeadLetterReader } from './events/dead-letters.js';
import { createAgentMetrics } from './metrics.js';
import { createUpdateStateHolder } from './update-state.js';
import { createCertReloader, reloadOnSighup, tlsServerOf, type CertReloader } from '../lib/tls-reload.js';
import { FortError } from '../lib/errors.js';

/** Composition root: config → logger → store → client API → admin API → READY. */
const { config, log, notifier, lifecycle, runtime, start } = bootDaemon({
  name: 'fort-agent',
  configEnvVar: 'FORT_AGENT_CONFIG',
  defaultConfig: '/etc/fort/agent.toml',
  load: loadAgentConfig,
});

// SIGHUP (systemctl reload) re-reads the servers' certificates; installed first, as its default
// action would kill the agent. Bad new files are refused and the old ones stay served.
let certs: CertReloader | undefined;
/** The agent's own client certificate, where it is a client (of the engine). */
let reloadClientCerts: (() => void) | undefined;
const reloadCerts = (by: string) => {
  if (!certs)
    throw new FortError(
      'FORT_ERR_CONFLICT',
      'the agent is still starting; it loads the certificates on disk as it starts',
    );
  const served = certs.reload(by);
  reloadClientCerts?.();
  return served;
};
reloadOnSighup(log).set(() => void reloadCerts('SIGHUP'));

await start(async () => {
  const startedAt = new Date();
  const release = readReleaseInfo();
  const health = createHealthRegistry();
  const metrics = createAgentMetrics();
  const clock = createClockHealth({
    health,
    builtAt: readBuildDate(release.root),
    log: log.child({ module: 'clock' }),
  });
  lifecycle.add({ name: 'clock', stop: async () => clock.stop() });
  const adminTls = loadTlsMaterial(config.admin.tls);
  const apiTls = loadTlsMaterial(config.api.tls);
  // [proxy] first, then HTTPS_PROXY / NO_PROXY; a bad URL or password file stops the start (78).
  const proxy = resolveProxy(config.proxy, runtime.proxy);
  if (proxy) log.info(describeProxy(proxy), 'outbound links use an HTTP proxy');

  // Keys a rotation committed before a crash are moved into place before anything loads them.
  if (applyPendingRotation(config.pairing.dir)) log.warn('finished a key rotation an earlier run committed');
  const unfinished = removeUnfinished(config.pairing.dir);
  if (unfinished.length)
    log.warn({ removed: unfinished }, 'removed what an interrupted pairing left (the fort stays as it was)');
  health.set(
    'pairing',
    'ready',
    config.identity
      ? `paired as ${config.fort.id} (tenant ${config.identity.tenant}) since ${config.identity.paired_at}`
      : config.fort.id === UNPAIRED
        ? 'unpaired: run fortctl pair'
        : `configured as ${config.fort.id} (not paired)`,
  );

  const store = openStore({ path: config.store.path, log: log.child({ module: 'store' }) });
  lifecycle.add({ name: 'store', stop: async () => store.close() });
  health.set('store', 'ready', `schema v${store.schemaVersion}`);
  const auditStore = openAuditStore({
    path: config.store.audit_path,
    retentionDays: config.store.audit_retention_days,
    maxBytes: config.store.audit_max_mib * 1024 * 1024,
    log: log.child({ module: 'audit' }),
  });
  lifecycle.add({ name: 'audit-store', stop: async () => auditStore.close() });

  const appsDir = join(dirname(config.store.path), 'apps');
  // Status goes to the cloud through the outbox; without the IoT link it is only logged.
  const outbox = config.iot
    ? createOutbox({ db: store.db, log: log.child({ module: 'outbox' }), maxMessages: config.iot.outbox_max_messages })
    : undefined;
  // The engine's client is small (node:https); what it talks to lives in another process.
  const engine = config.engine
    ? (await import('./engine/client.js')).createEngineClient({
        url: config.engine.url,
        tls: config.engine.tls ? loadTlsMaterial(config.engine.tls) : adminTls,
        serverName: config.engine.server_name,
        queryTimeoutMs: config.engine.query_timeout_ms,
        maxAnswerBytes: config.engine.max_answer_mib * 1024 * 1024,
      })
    : undefined;
  if (engine) {
    lifecycle.add({ name: 'engine-client', stop: async () => engine.close() });
    reloadClientCerts = () => engine.reloadTls(loadTlsMaterial(config.engine?.tls ?? config.admin.tls));
  }
  const disk = startDiskSpace({
    dir: dirname(config.store.path),
    warnFreePercent: config.store.disk_warn_free_percent,
    minFreeMib: config.store.disk_min_free_mib,
    health,
  });
  const reloads = startReloadService({
    db: store.db,
    engine,
    assertRoom: (what) => disk.assertRoom(what),
    config: config.reloads,
    appsDir,
    fortId: config.fort.id,
    outbox,
    proxy,
    log,
    metrics,
  });
  // Stopped after the link and the APIs (registered first): nothing queues work into a stopped executor.
  lifecycle.add({ name: 'reloads', stop: () => reloads.stop() });

  const updateState = createUpdateStateHolder();
  if (config.iot) {
    // Loaded only when configured: MQTT, WebSocket and SigV4 cost ~12 MB of idle RSS.
    const { startIotService } = await import('./iot/service.js');
    const iot = startIotService({
      config: config.iot,
      fortId: config.fort.id,
      db: store.db,
      outbox,
      handlers: reloads.handlers,
      health,
      clock,
      log,
      proxy,
      reportedState: reportedState({
        fortId: config.fort.id,
        version: release.version,
        health,
        reloads: () => reloads.queue.list({ limit: 500 }),
        certificates: () => certificateInventory(config),
        update: () => updateState.get(),
        ...(engine ? { engineVersion: async () => (await engine.health()).version } : {}),
        disk: () => disk.free(),
      }),
    });
    lifecycle.add({ name: 'iot', stop: () => iot.stop() });
    metrics.sample({
      link: () => ({ up: iot.link.state === 'connected', connects: iot.link.stats().connects }),
      inbox: () => ({ ...iot.inbox.stats(), deadLetteredBy: iot.inbox.deadLetteredBy() }),
    });
  }
  reloads.start();

  let data;
  let cloudLink: PairedCloudLink | undefined;
  if (config.api.auth && config.cloud) {
    // Loaded only when configured, like the IoT link: jose and the cloud client cost idle RSS.
    const { createDataDeps } = await import('./api/data-deps.js');
    const deps = createDataDeps({
      api: { ...config.api, auth: config.api.auth },
      cloud: config.cloud,
      fortId: config.fort.id,
      appsDir,
      db: store.db,
      auditDb: auditStore.db,
      reloads,
      proxy,
      health,
      log,
    });
    // Registered before the API: stopped after it, so the last requests' audit entries are written.
    lifecycle.add({ name: 'cloud', stop: async () => deps.close() });
    data = { ...deps.data, engine };
    metrics.sample({ authorizer: deps.data.authorizer.stats });
    cloudLink = deps;
  }
  const clientApi = await startClientApi({
    config: config.api,
    tls: apiTls,
    isDraining: () => health.draining,
    version: release.version,
    fortId: config.fort.id,
    ...(data ? { data } : {}),
    metrics,
    log: log.child({ module: 'client-api' }),
  });
  lifecycle.add({ name: 'client-api', stop: () => clientApi.close() });
  health.set('client-api', 'ready', `https://${config.api.host}:${config.api.port}`);

  metrics.sample({
    ...(outbox ? { outboxBacklog: () => outbox.size() } : {}),
    reloadBacklog: () => reloads.queue.backlog(),
    updateState: updateState.get,
  });
  // `fortctl log-level`: this process's, the engine's (relayed), the deployment manager's (told at its health checks).
  const logLevel = createLogLevelControl({ logger: log, configured: config.log.level });
  lifecycle.add({ name: 'log-level', stop: async () => logLevel.stop() });
  const dmLevel = createRequestedLevel();
  const pairing = createPairingOperations({
    config,
    cloud: cloudLink,
    proxy,
    log,
    shutdown: (reason) => void lifecycle.shutdown(reason, 0),
  });
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
    audit: createAuditReader(auditStore.db),
    certificates: () => certificateInventory(config),
    deadLetters: createDeadLetterReader(store.db),
    reloadCerts,
    metrics,
    updateState,
    logLevels: {
      agent: logLevel,
      ...(engine ? { engine: { set: engine.setLogLevel, view: engine.logLevel } } : {}),
      deploymentManager: dmLevel,
    },
    deploymentManagerLevel: () => dmLevel.asked(),
    reloads: adminReloadOperations(reloads),
    pairing,
    log: log.child({ module: 'admin-api' }),
  });
  lifecycle.add({ name: 'admin-api', stop: () => admin.close() });
  if (config.identity) {
    const renewal = startKeyRenewal({
      deviceCertFile: identityFiles(config.pairing.dir).deviceCert,
      rotate: () => pairing.rotateKeys('automatic renewal'),
      restart: (reason) => pairing.restart(reason),
      log: log.child({ module: 'pairing' }),
    });
    lifecycle.add({ name: 'key-renewal', stop: async () => renewal.stop() });
  }
  health.set('admin-api', 'ready', `https://${config.admin.host}:${config.admin.port}`);
  certs = createCertReloader(
    [
      { role: 'admin API (trust zone)', paths: config.admin.tls, server: tlsServerOf(admin) },
      { role: 'client API (client zone)', paths: config.api.tls, server: tlsServerOf(clientApi) },
    ],
    log.child({ module: 'tls' }),
  );

  log.info(
    { version: release.version, fortId: config.fort.id, readyMs: Date.now() - startedAt.getTime() },
    'fort-agent ready',
  );
  notifier.ready(
    `serving: client API ${config.api.host}:${config.api.port}, admin API ${config.admin.host}:${config.admin.port}`,
  );
  notifier.startWatchdog(() => health.snapshot().live);
});
