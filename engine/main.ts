#!/usr/bin/env node
import { bootDaemon } from '../lib/daemon.js';
import { createLogLevelControl } from '../lib/log-level.js';
import { loadTlsMaterial } from '../lib/tls.js';
import { createCertReloader, reloadOnSighup, tlsServerOf } from '../lib/tls-reload.js';
import { readReleaseInfo } from '../lib/version.js';
import { loadEngineConfig } from './config.js';
import { createVersionLoader } from './loads.js';
import { removeInterruptedLoads } from './load/leftovers.js';
import { buildEngineServer } from './server.js';
import { createVersionStore } from './versions.js';

/** Composition root: config → app versions (DuckDB) → loads → trust-zone mTLS server → READY. */
const { config, log, notifier, lifecycle, start } = bootDaemon({
  name: 'fort-engine',
  configEnvVar: 'FORT_ENGINE_CONFIG',
  defaultConfig: '/etc/fort/engine.toml',
  load: loadEngineConfig,
});

const sighup = reloadOnSighup(log);

await start(async () => {
  const q = config.queries;
  const logLevel = createLogLevelControl({ logger: log, configured: config.log.level });
  lifecycle.add({ name: 'log-level', stop: async () => logLevel.stop() });
  const interrupted = removeInterruptedLoads(config.data.dir);
  if (interrupted.length) log.warn({ removed: interrupted }, 'removed what loads interrupted by the last stop left');
  const versions = createVersionStore({
    dir: config.data.dir,
    memoryLimit: q.memory_limit,
    threads: q.threads,
    maxOpen: q.open_versions,
    log: log.child({ module: 'versions' }),
  });
  const loads = createVersionLoader({
    versions,
    sourceDirs: config.data.source_dirs,
    limits: { memoryLimit: q.memory_limit, threads: q.threads, maxRows: config.loads.max_rows },
    log: log.child({ module: 'loads' }),
  });
  const server = await buildEngineServer({
    tls: loadTlsMaterial(config.server.tls),
    allowedClients: config.server.allowed_clients,
    versions,
    loads,
    limits: { timeoutMs: q.timeout_ms, maxAnswerBytes: q.max_answer_bytes, maxGroups: q.max_groups },
    maxConcurrent: q.max_concurrent,
    cacheBytes: q.cache_mib * 1024 * 1024,
    version: readReleaseInfo().version,
    log: log.child({ module: 'server' }),
    logLevel,
  });
  await server.listen({ host: config.server.host, port: config.server.port });
  // A renewed certificate (fortctl certs renew, then systemctl reload): served to new handshakes.
  const certs = createCertReloader(
    [{ role: 'engine (trust zone)', paths: config.server.tls, server: tlsServerOf(server) }],
    log.child({ module: 'tls' }),
  );
  sighup.set(() => void certs.reload('SIGHUP'));
  lifecycle.add({
    name: 'server',
    stop: async () => {
      await server.close();
      versions.close();
    },
  });
  notifier.ready(`serving app versions from ${config.data.dir}`);
  // A wedged event loop (no ping) gets the engine restarted by systemd (WatchdogSec=).
  notifier.startWatchdog();
  log.info({ host: config.server.host, port: config.server.port }, 'engine ready');
});
