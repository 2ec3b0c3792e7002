import type Database from 'better-sqlite3';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { StoreError } from '../../lib/errors.js';

/** One app as the hub and the viewer list it; `versionId` is null until its first reload. */
export interface AppSummary {
  id: string;
  name: string;
  space: string;
  versionId: number | null;
  updatedAt: string;
}

export interface AppCatalog {
  /** Every app, ordered by name. */
  list(): AppSummary[];
  get(id: string): AppSummary | undefined;
  /** Absolute path of the current version's data file; undefined for an unknown app or one without a version. */
  currentVersionFile(id: string): string | undefined;
}

export interface AppCatalogDeps {
  /** The agent's own database (tables `apps`, `app_versions`). */
  db: Database.Database;
  /** Directory that `app_versions.file` is relative to. */
  appsDir: string;
}

interface CatalogRow extends AppSummary {
  /** The current version's file as stored (relative to appsDir), null without a version. */
  file: string | null;
}

/**
 * Read side of the app catalogue over the agent's SQLite store. Every client API request asks
 * it, and apps change rarely, so the whole (small) table is held in memory and re-read only
 * when the database changed: `total_changes()` moves with this connection's writes (free to
 * ask) and `PRAGMA data_version` with other connections' (one header read).
 */
export function createAppCatalog(deps: AppCatalogDeps): AppCatalog {
  const appsDir = resolve(deps.appsDir);
  const all = deps.db.prepare<[], CatalogRow>(
    `SELECT a.id, a.name, a.space, a.current_version_id AS versionId, a.updated_at AS updatedAt, v.file
       FROM apps a LEFT JOIN app_versions v ON v.id = a.current_version_id AND v.app_id = a.id
      ORDER BY a.name, a.id`,
  );
  const ownChanges = deps.db.prepare<[], number>('SELECT total_changes()').pluck();
  const othersChanges = deps.db.prepare<[], number>('PRAGMA data_version').pluck();
  let snapshot: { own: number; others: number; list: AppSummary[]; byId: Map<string, CatalogRow> } | undefined;

  const current = () => {
    const own = ownChanges.get()!;
    const others = othersChanges.get()!;
    if (snapshot && snapshot.own === own && snapshot.others === others) return snapshot;
    const rows = all.all();
    snapshot = { own, others, list: rows.map(({ file: _file, ...summary }) => summary), byId: new Map(rows.map((r) => [r.id, r])) };
    return snapshot;
  };

  return {
    list: () => current().list.map((a) => ({ ...a })),
    get(id) {
      const row = current().byId.get(id);
      if (!row) return undefined;
      const { file: _file, ...summary } = row;
      return summary;
    },
    currentVersionFile(id) {
      const file = current().byId.get(id)?.file;
      return file == null ? undefined : insideAppsDir(appsDir, file, id);
    },
  };
}

/** A stored path that leaves the apps directory is a corrupt (or tampered) row: never follow it. */
function insideAppsDir(appsDir: string, file: string, appId: string): string {
  const path = resolve(appsDir, file);
  const rel = relative(appsDir, path);
  if (isAbsolute(file) || rel === '' || rel.split(sep)[0] === '..' || isAbsolute(rel)) {
    throw new StoreError(`app ${appId}: version file ${JSON.stringify(file)} is not inside the apps directory`);
  }
  return path;
}
