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

const SUMMARY = 'SELECT id, name, space, current_version_id AS versionId, updated_at AS updatedAt FROM apps';

/** Read side of the app catalogue over the agent's SQLite store. */
export function createAppCatalog(deps: AppCatalogDeps): AppCatalog {
  const appsDir = resolve(deps.appsDir);
  const listStmt = deps.db.prepare<[], AppSummary>(`${SUMMARY} ORDER BY name, id`);
  const getStmt = deps.db.prepare<[string], AppSummary>(`${SUMMARY} WHERE id = ?`);
  const fileStmt = deps.db
    .prepare<[string], string>(
      `SELECT v.file FROM apps a JOIN app_versions v ON v.id = a.current_version_id AND v.app_id = a.id WHERE a.id = ?`,
    )
    .pluck();

  return {
    list: () => listStmt.all(),
    get: (id) => getStmt.get(id),
    currentVersionFile(id) {
      const file = fileStmt.get(id);
      return file === undefined ? undefined : insideAppsDir(appsDir, file, id);
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
