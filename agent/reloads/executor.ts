import type Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import { FortError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { commitAppVersion, pruneAppVersions, type VersionToCommit } from '../apps/versions.js';
import type { Reload, ReloadQueue } from './queue.js';
import type { ReloadStatusSink } from './status.js';
import { NO_METRICS, type MetricsRecorder } from '../metrics.js';

/**
 * What a load produced: a fsynced version file under a temp name in the app's directory (the
 * agent loaded it), or a version fort-engine loaded and keeps. Either way with its tables.
 */
export type LoadedVersion = VersionToCommit & { tables: { name: string; rows: number }[]; rowCount: number };

/**
 * Loads app `appId` from its sources; honours `signal` (and removes what it wrote when it
 * fails). `start` names this start of the reload (unique: the id and the attempt).
 */
export type LoadVersion = (
  appId: string,
  signal: AbortSignal,
  start: { reloadId: string; attempt: number },
) => Promise<LoadedVersion>;

export interface ReloadExecutorOptions {
  db: Database.Database;
  queue: ReloadQueue;
  appsDir: string;
  load: LoadVersion;
  /** Removes a loaded version that was never committed, or one pruned (a version the engine keeps). */
  discard?: (appId: string, v: { engineVersion: string }) => void;
  /**
   * After a committed reload and its prune: whatever else of the app the version store holds;
   * `idle` says whether no other reload of the app runs now (its version would not be committed yet).
   */
  sweep?: (appId: string, idle: () => boolean) => void;
  status: ReloadStatusSink;
  concurrency: number;
  timeoutMs: number;
  keepVersions: number;
  log: Logger;
  metrics?: MetricsRecorder;
  now?: () => Date;
}

/** Why a run was aborted: decides the end state it is recorded with. */
type AbortWhy = 'cancel' | 'timeout' | 'shutdown';

/**
 * Runs queued reloads, at most `concurrency` at a time. Claiming a reload (queued → running)
 * and reporting `reload.started` commit together; so do the new version, the reload's end state
 * and its status. A stop (drain, SIGTERM) aborts running loads without recording an end: they
 * stay `running`, and the next start re-queues them (see recovery.ts).
 */
export function createReloadExecutor(opts: ReloadExecutorOptions) {
  const { db, queue, status, log } = opts;
  const now = opts.now ?? (() => new Date());
  const metrics = opts.metrics ?? NO_METRICS;
  const running = new Map<string, { appId: string; controller: AbortController; done: Promise<void> }>();
  let stopped = true;
  let pumpScheduled = false;

  const claim = db.transaction((limit: number) => {
    const claimed = queue.claim(limit);
    for (const r of claimed)
      status.emit('reload.started', {
        reloadId: r.id,
        appId: r.appId,
        attempt: r.attempts,
        requests: r.requests,
        source: r.source,
      });
    return claimed;
  });

  function kick(): void {
    if (stopped || pumpScheduled) return;
    pumpScheduled = true;
    setImmediate(pump);
  }

  function pump(): void {
    pumpScheduled = false;
    if (stopped) return;
    const free = opts.concurrency - running.size;
    if (free <= 0) return;
    let claimed: Reload[];
    try {
      claimed = claim(free);
    } catch (err) {
      log.error({ err }, 'could not claim queued reloads; retrying shortly');
      setTimeout(kick, 1000).unref();
      return;
    }
    for (const r of claimed) {
      const controller = new AbortController();
      const done = run(r, controller).finally(() => {
        running.delete(r.id);
        kick();
      });
      running.set(r.id, { appId: r.appId, controller, done });
    }
  }

  async function run(r: Reload, controller: AbortController): Promise<void> {
    const t0 = Date.now();
    const timer = setTimeout(() => controller.abort('timeout' satisfies AbortWhy), opts.timeoutMs);
    log.info({ reloadId: r.id, appId: r.appId, attempt: r.attempts }, 'reload started');
    // A cancel that arrived between the claim and now.
    if (queue.get(r.id)?.cancelRequested) controller.abort('cancel' satisfies AbortWhy);
    let loaded: LoadedVersion | undefined;
    try {
      loaded = await opts.load(r.appId, controller.signal, { reloadId: r.id, attempt: r.attempts });
      if (controller.signal.aborted) throw abortError(controller.signal.reason as AbortWhy);
      const v = loaded;
      const { versionId } = db.transaction(() => {
        const committed = commitAppVersion(db, opts.appsDir, r.appId, v, now());
        if (!queue.finish(r.id, { state: 'succeeded', versionId: committed.versionId, rows: v.rowCount }))
          throw new Error(`reload ${r.id} is no longer running`);
        status.emit('reload.succeeded', {
          reloadId: r.id,
          appId: r.appId,
          versionId: committed.versionId,
          rows: v.rowCount,
          tables: v.tables,
          durationMs: Date.now() - t0,
        });
        return committed;
      })();
      metrics.reloadFinished('succeeded', (Date.now() - t0) / 1000);
      log.info(
        { reloadId: r.id, appId: r.appId, versionId, rows: v.rowCount, durationMs: Date.now() - t0 },
        'reload succeeded',
      );
      try {
        const pruned = pruneAppVersions(db, opts.appsDir, r.appId, opts.keepVersions);
        for (const p of pruned) if (p.engineVersion) opts.discard?.(r.appId, { engineVersion: p.engineVersion });
        if (pruned.length)
          log.info(
            { appId: r.appId, pruned: pruned.map((p) => p.engineVersion ?? p.file) },
            'old app versions deleted',
          );
        opts.sweep?.(r.appId, () => ![...running].some(([id, x]) => x.appId === r.appId && id !== r.id));
      } catch (err) {
        log.warn({ err, appId: r.appId }, 'old app versions could not be deleted');
      }
    } catch (err) {
      if (loaded && 'tmpFile' in loaded) rmSync(loaded.tmpFile, { force: true });
      else if (loaded) opts.discard?.(r.appId, loaded);
      const why = controller.signal.aborted ? (controller.signal.reason as AbortWhy) : undefined;
      if (why === 'shutdown') {
        log.info({ reloadId: r.id, appId: r.appId }, 'reload stopped by shutdown; it is re-queued at the next start');
        return;
      }
      const e = why ? abortError(why) : err;
      const code = e instanceof FortError ? e.code : 'FORT_ERR_INTERNAL';
      // FortError messages from the loaders name tables, rows and columns, never values.
      const message = e instanceof FortError ? e.message : 'internal error (see the fort log)';
      const state = why === 'cancel' ? 'cancelled' : 'failed';
      try {
        const recorded = db.transaction(() => {
          if (!queue.finish(r.id, { state, errorCode: code, errorMessage: message })) return false;
          status.emit(state === 'cancelled' ? 'reload.cancelled' : 'reload.failed', {
            reloadId: r.id,
            appId: r.appId,
            code,
            message,
            durationMs: Date.now() - t0,
          });
          return true;
        })();
        if (recorded) metrics.reloadFinished(state, (Date.now() - t0) / 1000);
      } catch (dbErr) {
        log.error(
          { err: dbErr, reloadId: r.id },
          'could not record the end of a reload; it is re-queued at the next start',
        );
      }
      (state === 'cancelled' ? log.info : log.warn).call(
        log,
        { reloadId: r.id, appId: r.appId, code, err: e instanceof FortError ? undefined : e, reason: message },
        `reload ${state}`,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    start(): void {
      stopped = false;
      kick();
    },
    /** Something was queued (after its transaction committed). */
    kick,
    /** Aborts a running reload whose cancel was recorded (after that transaction committed). */
    abortIfRunning(reloadId: string): boolean {
      const r = running.get(reloadId);
      if (!r) return false;
      r.controller.abort('cancel' satisfies AbortWhy);
      return true;
    },
    runningIds: (): string[] => [...running.keys()],
    /** Stops claiming, aborts running loads (they stay `running` in the store) and waits for them. */
    async stop(): Promise<void> {
      stopped = true;
      for (const r of running.values()) r.controller.abort('shutdown' satisfies AbortWhy);
      await Promise.all([...running.values()].map((r) => r.done));
    },
  };
}
export type ReloadExecutor = ReturnType<typeof createReloadExecutor>;

function abortError(why: AbortWhy): FortError {
  if (why === 'timeout')
    return new FortError('FORT_ERR_RELOAD_TIMEOUT', 'reload took longer than reloads.timeout_seconds', {
      fatal: false,
    });
  return new FortError('FORT_ERR_RELOAD_CANCELLED', why === 'cancel' ? 'cancelled' : 'stopped by shutdown', {
    fatal: false,
  });
}
