import type Database from 'better-sqlite3';
import { join } from 'node:path';
import type { Logger } from '../../lib/logger.js';
import type { ProxySettings } from '../../lib/proxy.js';
import type { Outbox } from '../events/outbox.js';
import type { EventHandler } from '../events/inbox.js';
import type { AppDefinition } from '../apps/definition.js';
import { createAppRegistry } from '../apps/registry.js';
import type { ReloadsConfig } from './config.js';
import { createReloadQueue, type Reload } from './queue.js';
import { reloadStatusSink } from './status.js';
import { createReloadExecutor, type LoadVersion } from './executor.js';
import { recoverReloads } from './recovery.js';
import { cancelReloads, reloadEventHandlers } from './handlers.js';
import type { MetricsRecorder } from '../metrics.js';
import type { EngineClient } from '../engine/client.js';

export interface ReloadServiceDeps {
  db: Database.Database;
  config: ReloadsConfig;
  /** Directory of the app version files (`<appsDir>/<appId>/<versionId>.sqlite`). */
  appsDir: string;
  fortId: string;
  /** Status goes to the cloud through it when the IoT link is configured. */
  outbox?: Outbox | undefined;
  proxy?: ProxySettings | undefined;
  log: Logger;
  metrics?: MetricsRecorder;
  /** Present: fort-engine loads and keeps the versions; absent: the agent writes SQLite versions itself. */
  engine?: EngineClient | undefined;
  /** Throws FORT_ERR_DISK_LOW when the data directory is under its free-space floor (agent/disk.ts). */
  assertRoom?: (what: string) => void;
}

/**
 * Apps and reloads: registration (operator only), the durable queue, the executor, crash
 * recovery at start, the cloud's reload events, and status back to the cloud.
 */
export function startReloadService(deps: ReloadServiceDeps) {
  const { db, config } = deps;
  const log = deps.log.child({ module: 'reloads' });
  const sources = { dataDirs: config.data_dirs, httpAllowedHosts: config.http_allowed_hosts };
  const queue = createReloadQueue({ db });
  const status = reloadStatusSink({ fortId: deps.fortId, outbox: deps.outbox, log });
  const registry = createAppRegistry({ db, sources });

  const engine = deps.engine;
  /**
   * With fort-engine configured, every app is loaded there: files read by the engine, HTTP
   * sources fetched by the agent (the engine has no network beyond loopback) and their rows
   * streamed to it. Without one, the agent loads the app into its own SQLite version.
   */
  const load: LoadVersion = async (appId, signal, start) => {
    const definition: AppDefinition = await registry.definition(appId);
    // Loaded on the first reload: the definition checks cost idle RSS a fort without apps never needs.
    const { checkDefinitionSources } = await import('../apps/definition.js');
    // Files may have changed since registration: checked again on every load.
    checkDefinitionSources(definition, sources);
    // Failed at once with a clear code, not half-way with ENOSPC; the current version keeps serving.
    deps.assertRoom?.(`reload of ${appId}`);
    const withProxy = { ...sources, ...(deps.proxy ? { proxy: deps.proxy } : {}) };
    if (engine) {
      const { engineLoadTables, loadInEngine } = await import('../engine/engine-loads.js');
      return loadInEngine({
        engine,
        appId,
        versionId: `${start.reloadId}-${start.attempt}`,
        tables: engineLoadTables(definition, withProxy),
        timeoutMs: config.timeout_seconds * 1000,
        signal,
        log,
      });
    }
    // The connectors and the writer, like the definition checks, only once a reload runs here.
    const [{ openTableSource }, { writeAppVersion }] = await Promise.all([
      import('../apps/connectors/index.js'),
      import('../apps/version-writer.js'),
    ]);
    return writeAppVersion({
      dir: join(deps.appsDir, appId),
      sources: definition.tables.map((t) => openTableSource(t, withProxy)),
      maxRows: config.max_rows,
      signal,
      log,
    });
  };

  /**
   * After a reload's prune: versions the engine holds that no app_versions row names — loaded
   * for a start the agent did not live to commit (killed between the engine's answer and its
   * transaction) — are deleted too. A load still running in the engine is not listed yet.
   */
  const namedVersions = db.prepare<[string], string>(
    'SELECT engine_version FROM app_versions WHERE app_id = ? AND engine_version IS NOT NULL',
  );
  const sweep = async (appId: string, idle: () => boolean) => {
    if (!engine) return;
    const held = await engine.versions(appId);
    // Decided at one moment when no other reload of the app runs: whatever loads after is not listed.
    if (!idle()) return;
    const named = new Set(namedVersions.pluck().all(appId));
    for (const v of held.filter((x) => !named.has(x))) {
      log.warn({ appId, version: v }, 'fort-engine held a version no reload committed; deleting it');
      await engine.deleteVersion(appId, v);
    }
  };
  const discard = (appId: string, v: { engineVersion: string }) =>
    void engine
      ?.deleteVersion(appId, v.engineVersion)
      .catch((err: Error) =>
        log.warn({ appId, version: v.engineVersion, err: err.message }, 'fort-engine could not delete an old version'),
      );

  const executor = createReloadExecutor({
    db,
    queue,
    appsDir: deps.appsDir,
    load,
    discard,
    sweep: (appId: string, idle: () => boolean) =>
      void sweep(appId, idle).catch((err: Error) =>
        log.warn({ appId, err: err.message }, 'could not sweep fort-engine for versions no reload committed'),
      ),
    status,
    concurrency: config.concurrency,
    timeoutMs: config.timeout_seconds * 1000,
    keepVersions: config.keep_versions,
    log,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
  });
  const afterCommit = (what: { kick?: true; abort?: string[] }) =>
    setImmediate(() => {
      for (const id of what.abort ?? []) executor.abortIfRunning(id);
      if (what.kick) executor.kick();
    });
  const handlers: Map<string, EventHandler> = reloadEventHandlers({ queue, status, afterCommit });

  return {
    queue,
    registry,
    handlers,
    executor,
    /** Re-queues what the last stop interrupted, then starts running the queue. */
    start() {
      recoverReloads({ db, queue, appsDir: deps.appsDir, maxAttempts: config.max_attempts, status, log });
      executor.start();
    },
    /** A reload asked for by a user or the operator (coalesced like the cloud's). */
    request(appId: string, source: string): { reload: Reload; coalesced: boolean } {
      const r = db.transaction(() => queue.request(appId, source))();
      executor.kick();
      return r;
    },
    cancel(target: { reloadId: string } | { appId: string }) {
      const r = db.transaction(() => cancelReloads(queue, status, target))();
      for (const x of r.cancelling) executor.abortIfRunning(x.id);
      return r;
    },
    stop: () => executor.stop(),
  };
}
export type ReloadService = ReturnType<typeof startReloadService>;

/** What the admin API offers of apps and reloads (its AdminReloadsDeps), from the service. */
export function adminReloadOperations(reloads: ReloadService) {
  return {
    registerApp: (text: string, format: 'toml' | 'json', by: string) => reloads.registry.register(text, format, by),
    listApps: () => reloads.registry.list(),
    listReloads: (filter: Parameters<ReloadService['queue']['list']>[0]) => reloads.queue.list(filter),
    requestReload: (appId: string, source: string) => reloads.request(appId, source),
    cancelReload: (target: { reloadId: string } | { appId: string }) => reloads.cancel(target),
  };
}
