import type Database from 'better-sqlite3';
import { readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDir } from '../../lib/files.js';

/** A complete, fsynced SQLite file inside `<appsDir>/<appId>/`, under a temp name. */
export interface FileVersionToCommit {
  tmpFile: string;
  rowCount: number;
  contentHash: string;
}

/** A version fort-engine loaded and keeps: only its id and its tables' row counts live here. */
export interface EngineVersionToCommit {
  engineVersion: string;
  tables: { name: string; rows: number }[];
  rowCount: number;
}

export type VersionToCommit = FileVersionToCommit | EngineVersionToCommit;

/**
 * Makes a written version the app's current one. Call inside a transaction (together with the
 * reload's own state change): the `app_versions` row, the switch of `apps.current_version_id`
 * and the rename to `<appsDir>/<appId>/<versionId>.sqlite` then take effect together. A crash
 * after the rename but before the commit leaves a file no row names; `removeOrphanVersionFiles`
 * deletes it at the next start (and the id is reused, as the insert rolled back).
 */
export function commitAppVersion(
  db: Database.Database,
  appsDir: string,
  appId: string,
  v: VersionToCommit,
  now: Date,
): { versionId: number; file: string } {
  if (!db.inTransaction) throw new Error('commitAppVersion must run inside a transaction');
  const ts = now.toISOString();
  const engine = 'engineVersion' in v;
  const versionId = Number(
    db
      .prepare(
        "INSERT INTO app_versions (app_id, file, row_count, content_hash, created_at, engine_version, tables_json) VALUES (?, '', ?, ?, ?, ?, ?)",
      )
      .run(
        appId,
        v.rowCount,
        engine ? '' : v.contentHash,
        ts,
        engine ? v.engineVersion : null,
        engine ? JSON.stringify(v.tables) : null,
      ).lastInsertRowid,
  );
  const changed = db
    .prepare('UPDATE apps SET current_version_id = ?, updated_at = ? WHERE id = ?')
    .run(versionId, ts, appId).changes;
  if (changed !== 1) throw new Error(`app ${appId} does not exist`);
  if (engine) return { versionId, file: '' };
  const rel = `${appId}/${versionId}.sqlite`;
  db.prepare('UPDATE app_versions SET file = ? WHERE id = ?').run(rel, versionId);
  const file = join(appsDir, rel);
  renameSync(v.tmpFile, file);
  fsyncDir(join(appsDir, appId));
  return { versionId, file };
}

/**
 * Deletes all but the newest `keep` versions of an app (the current one is always kept): rows
 * first, then files. A reader that opened an old file keeps reading it (the inode lives until
 * its handle closes); new readers only ever get the current version.
 */
export function pruneAppVersions(
  db: Database.Database,
  appsDir: string,
  appId: string,
  keep: number,
): { file: string; engineVersion: string | null }[] {
  const old = db.transaction(() => {
    const rows = db
      .prepare<[string, string, number], { id: number; file: string; engineVersion: string | null }>(
        `SELECT id, file, engine_version AS engineVersion FROM app_versions WHERE app_id = ? AND id NOT IN (SELECT current_version_id FROM apps WHERE id = ? AND current_version_id IS NOT NULL)
         ORDER BY id DESC LIMIT -1 OFFSET ?`,
      )
      .all(appId, appId, Math.max(0, keep - 1));
    // A reload that produced a deleted version keeps its record, without the dangling reference.
    const unlink = db.prepare('UPDATE reloads SET version_id = NULL WHERE version_id = ?');
    const del = db.prepare('DELETE FROM app_versions WHERE id = ?');
    for (const r of rows) {
      unlink.run(r.id);
      del.run(r.id);
    }
    return rows;
  })();
  for (const r of old) if (r.engineVersion === null) rmSync(join(appsDir, r.file), { force: true });
  return old.map(({ file, engineVersion }) => ({ file, engineVersion }));
}

/**
 * At start: files under the apps directory that no `app_versions` row names — temp files of a
 * load a crash interrupted, or a version renamed into place whose transaction never committed.
 * Never visible to readers (the catalog only hands out files its rows name); removed here.
 */
export function removeOrphanVersionFiles(db: Database.Database, appsDir: string): string[] {
  const known = new Set(
    db.prepare<[], string>('SELECT file FROM app_versions WHERE engine_version IS NULL').pluck().all(),
  );
  const removed: string[] = [];
  let apps: string[];
  try {
    apps = readdirSync(appsDir);
  } catch {
    return removed;
  }
  for (const app of apps) {
    let entries;
    try {
      entries = readdirSync(join(appsDir, app), { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      const rel = `${app}/${e.name}`;
      if (!e.isFile() || known.has(rel)) continue;
      // Only what the fort itself writes there: versions and their temp / SQLite side files.
      if (!/^(\d+\.sqlite(-journal|-wal|-shm)?|\..*\.tmp(-journal)?)$/.test(e.name)) continue;
      rmSync(join(appsDir, rel), { force: true });
      removed.push(rel);
    }
  }
  return removed;
}
