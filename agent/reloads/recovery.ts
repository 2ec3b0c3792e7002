import type Database from 'better-sqlite3';
import type { Logger } from '../../lib/logger.js';
import { removeOrphanVersionFiles } from '../apps/versions.js';
import type { ReloadQueue } from './queue.js';
import type { ReloadStatusSink } from './status.js';

/**
 * At start, before the executor runs: reloads a crash (or a stop) left `running` are re-queued
 * unless they have been started `maxAttempts` times already, and files a crashed load left in
 * the apps directory (temp files, a version renamed whose transaction never committed) are
 * removed. If the app meanwhile got another queued reload, the interrupted one is recorded
 * as `interrupted` and its requests join the queued one.
 */
export function recoverReloads(opts: {
  db: Database.Database;
  queue: ReloadQueue;
  appsDir: string;
  maxAttempts: number;
  status: ReloadStatusSink;
  log: Logger;
  now?: () => Date;
}) {
  const { db, log } = opts;
  const now = opts.now ?? (() => new Date());
  const requeue = db.prepare<[string]>(
    "UPDATE reloads SET state = 'queued', cancel_requested = 0 WHERE id = ? AND state = 'running'",
  );
  const interrupted = db.prepare<[string, string]>(
    "UPDATE reloads SET state = 'interrupted', finished_at = ?, error_code = 'FORT_ERR_RELOAD_INTERRUPTED', error_message = 'the agent stopped during this reload; a queued one takes its place' WHERE id = ?",
  );
  const join = db.prepare<[number, string]>(
    "UPDATE reloads SET requests = requests + ? WHERE app_id = ? AND state = 'queued'",
  );
  const hasQueued = db.prepare<[string], number>("SELECT 1 FROM reloads WHERE app_id = ? AND state = 'queued'").pluck();

  const result = db.transaction(() => {
    const counts = { requeued: 0, givenUp: 0, cancelled: 0, merged: 0 };
    for (const r of opts.queue.running()) {
      if (r.cancelRequested) {
        opts.queue.finish(r.id, {
          state: 'cancelled',
          errorCode: 'FORT_ERR_RELOAD_CANCELLED',
          errorMessage: 'cancelled',
        });
        opts.status.emit('reload.cancelled', {
          reloadId: r.id,
          appId: r.appId,
          code: 'FORT_ERR_RELOAD_CANCELLED',
          message: 'cancelled',
        });
        counts.cancelled++;
      } else if (r.attempts >= opts.maxAttempts) {
        const message = `started ${r.attempts} times without finishing (reloads.max_attempts = ${opts.maxAttempts})`;
        opts.queue.finish(r.id, { state: 'failed', errorCode: 'FORT_ERR_RELOAD_ATTEMPTS', errorMessage: message });
        opts.status.emit('reload.failed', {
          reloadId: r.id,
          appId: r.appId,
          code: 'FORT_ERR_RELOAD_ATTEMPTS',
          message,
        });
        counts.givenUp++;
      } else if (hasQueued.get(r.appId) !== undefined) {
        interrupted.run(now().toISOString(), r.id);
        join.run(r.requests, r.appId);
        counts.merged++;
      } else {
        requeue.run(r.id);
        counts.requeued++;
      }
    }
    return counts;
  })();
  const removed = removeOrphanVersionFiles(db, opts.appsDir);
  if (result.requeued + result.givenUp + result.cancelled + result.merged + removed.length > 0) {
    log.warn({ ...result, orphanFilesRemoved: removed }, 'recovered reloads interrupted by the last stop');
  }
  return { ...result, orphanFilesRemoved: removed };
}
