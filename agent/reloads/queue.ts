import type Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { NotFoundError } from '../apps/errors.js';
import type { AdminReload } from '../../lib/admin-client.js';

export type ReloadState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';

/** A reload as the admin API shows it (lib/admin-client.ts holds the wire shape), plus what only the agent tracks. */
export interface Reload extends Omit<AdminReload, 'state'> {
  state: ReloadState;
  cancelRequested: boolean;
}

export interface Finish {
  state: 'succeeded' | 'failed' | 'cancelled';
  versionId?: number;
  rows?: number;
  errorCode?: string;
  errorMessage?: string;
}

export type CancelResult = 'cancelled' | 'cancelling' | 'finished' | 'not_found';

const COLUMNS = `id, app_id AS appId, state, source, requests, attempts, requested_at AS requestedAt, started_at AS startedAt,
  finished_at AS finishedAt, version_id AS versionId, rows, error_code AS errorCode, error_message AS errorMessage, cancel_requested AS cancelRequested`;

type Row = Omit<Reload, 'cancelRequested'> & { cancelRequested: number };
const toReload = (r: Row): Reload => ({ ...r, cancelRequested: r.cancelRequested === 1 });

/**
 * The durable reload queue (`reloads` table). Every method is synchronous on the shared
 * handle, so an event handler's request commits with the inbox row that carried it. At most
 * one reload per app is queued (a partial unique index): a request for an app that already
 * has one waiting joins it. A request while one runs queues one more, which then loads what
 * changed meanwhile.
 */
/** Finished reloads kept per app (newest first): the history `fortctl reloads list` shows, bounded. */
export const KEEP_FINISHED = 100;

export function createReloadQueue(opts: { db: Database.Database; now?: () => Date; keepFinished?: number }) {
  const { db } = opts;
  const now = opts.now ?? (() => new Date());
  const appExists = db.prepare<[string], number>('SELECT 1 FROM apps WHERE id = ?').pluck();
  const upsert = db.prepare<[string, string, string, string], { id: string; requests: number }>(
    `INSERT INTO reloads (id, app_id, state, source, requested_at) VALUES (?, ?, 'queued', ?, ?)
     ON CONFLICT (app_id) WHERE state = 'queued' DO UPDATE SET requests = requests + 1
     RETURNING id, requests`,
  );
  const byId = db.prepare<[string], Row>(`SELECT ${COLUMNS} FROM reloads WHERE id = ?`);
  const oldestQueued = db.prepare<[number], Row>(
    `SELECT ${COLUMNS} FROM reloads WHERE state = 'queued' ORDER BY requested_at, rowid LIMIT ?`,
  );
  const start = db.prepare<[string, string]>(
    "UPDATE reloads SET state = 'running', attempts = attempts + 1, started_at = ? WHERE id = ? AND state = 'queued'",
  );
  const finish = db.prepare(
    `UPDATE reloads SET state = @state, finished_at = @at, version_id = @versionId, rows = @rows, error_code = @errorCode, error_message = @errorMessage
     WHERE id = @id AND state = 'running'`,
  );
  const cancelQueued = db.prepare<[string, string]>(
    "UPDATE reloads SET state = 'cancelled', finished_at = ?, error_code = 'FORT_ERR_RELOAD_CANCELLED', error_message = 'cancelled before it started' WHERE id = ? AND state = 'queued'",
  );
  const FINISHED = "('succeeded','failed','cancelled','interrupted')";
  const pruneFinished = db.prepare<[string, string, number]>(
    `DELETE FROM reloads WHERE app_id = (SELECT app_id FROM reloads WHERE id = ?) AND state IN ${FINISHED}
       AND id NOT IN (SELECT id FROM reloads WHERE app_id = (SELECT app_id FROM reloads WHERE id = ?) AND state IN ${FINISHED}
                      ORDER BY requested_at DESC, rowid DESC LIMIT ?)`,
  );
  const keepFinished = opts.keepFinished ?? KEEP_FINISHED;
  const markCancel = db.prepare<[string]>("UPDATE reloads SET cancel_requested = 1 WHERE id = ? AND state = 'running'");
  const activeOfApp = db.prepare<[string], Row>(
    `SELECT ${COLUMNS} FROM reloads WHERE app_id = ? AND state IN ('queued', 'running') ORDER BY state = 'running' DESC`,
  );
  const listStmt = db.prepare<[{ app: string | null; state: string | null; limit: number }], Row>(
    `SELECT ${COLUMNS} FROM reloads WHERE (@app IS NULL OR app_id = @app) AND (@state IS NULL OR state = @state) ORDER BY requested_at DESC, rowid DESC LIMIT @limit`,
  );
  const running = db.prepare<[], Row>(`SELECT ${COLUMNS} FROM reloads WHERE state = 'running'`);
  const backlog = db.prepare<[], { state: 'queued' | 'running'; n: number }>(
    "SELECT state, COUNT(*) AS n FROM reloads WHERE state IN ('queued', 'running') GROUP BY state",
  );

  const get = (id: string): Reload | undefined => {
    const r = byId.get(id);
    return r && toReload(r);
  };

  return {
    /** Queues a reload of `appId` or joins the one already queued. Throws NotFoundError for an unknown app. */
    request(appId: string, source: string): { reload: Reload; coalesced: boolean } {
      if (appExists.get(appId) === undefined) throw new NotFoundError(`no app ${appId} on this fort`);
      const r = upsert.get(randomUUID(), appId, source, now().toISOString())!;
      return { reload: get(r.id)!, coalesced: r.requests > 1 };
    },
    /** Moves up to `limit` queued reloads (oldest first) to running; call inside a transaction. */
    claim(limit: number): Reload[] {
      const claimed: Reload[] = [];
      for (const r of oldestQueued.all(limit)) {
        if (start.run(now().toISOString(), r.id).changes === 1) claimed.push(get(r.id)!);
      }
      return claimed;
    },
    /** Also forgets the app's finished reloads past the newest `keepFinished`. */
    finish(id: string, f: Finish): boolean {
      const done =
        finish.run({
          id,
          state: f.state,
          at: now().toISOString(),
          versionId: f.versionId ?? null,
          rows: f.rows ?? null,
          errorCode: f.errorCode ?? null,
          errorMessage: f.errorMessage ?? null,
        }).changes === 1;
      if (done) pruneFinished.run(id, id, keepFinished);
      return done;
    },
    /** By reload id, or by app id (its queued reload and its running one). Reports what it changed. */
    cancel(target: { reloadId: string } | { appId: string }): {
      result: CancelResult;
      cancelled: Reload[];
      cancelling: Reload[];
    } {
      const rows =
        'reloadId' in target
          ? [get(target.reloadId)].filter((r): r is Reload => r !== undefined)
          : activeOfApp.all(target.appId).map(toReload);
      const cancelled: Reload[] = [];
      const cancelling: Reload[] = [];
      for (const r of rows) {
        if (r.state === 'queued' && cancelQueued.run(now().toISOString(), r.id).changes === 1)
          cancelled.push(get(r.id)!);
        else if (r.state === 'running' && markCancel.run(r.id).changes === 1) cancelling.push(get(r.id)!);
      }
      const result: CancelResult =
        rows.length === 0
          ? 'not_found'
          : cancelling.length
            ? 'cancelling'
            : cancelled.length
              ? 'cancelled'
              : 'finished';
      return { result, cancelled, cancelling };
    },
    get,
    list(filter: { appId?: string; state?: ReloadState; limit?: number } = {}): Reload[] {
      return listStmt
        .all({ app: filter.appId ?? null, state: filter.state ?? null, limit: filter.limit ?? 100 })
        .map(toReload);
    },
    running: (): Reload[] => running.all().map(toReload),
    /** How many wait and run (the reloads_state index answers it: cheap at every metrics scrape). */
    backlog(): { queued: number; running: number } {
      const b = { queued: 0, running: 0 };
      for (const r of backlog.all()) b[r.state] = r.n;
      return b;
    },
  };
}
export type ReloadQueue = ReturnType<typeof createReloadQueue>;
