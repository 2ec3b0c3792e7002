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
  /** The current version when fort-engine keeps it (its id there, its tables); undefined otherwise. */
  currentEngineVersion(id: string): EngineVersion | undefined;
}

export interface EngineVersion {
  version: string;
  tables: { name: string; rows: number }[];
}

export interface AppCatalogDeps {
  /** The agent's own database (tables `apps`, `app_versions`). */
  db: Database.Database;
  /** Directory that `app_versions.file` is relative to. */
  appsDir: string;
  /** Default 1000. */
  otherWritersCheckMs?: number;
  now?: () => number;
}

interface CatalogRow extends AppSummary {
  /** The current version's file as stored (relative to appsDir), null without one (or when the engine keeps it). */
  file: string | null;
  engineVersion: string | null;
  tablesJson: string | null;
}

/**
 * Read side of the app catalogue over the agent's SQLite store. Every client API request asks
 * it, and apps change rarely, so the whole (small) table is held in memory. `total_changes()`
 * moves with every write of this connection (the agent's own; no I/O to ask), so those are
 * seen at once. `PRAGMA data_version` moves with other connections' commits but costs a lock
 * round trip on the WAL index, so it is asked at most every `otherWritersCheckMs` (nothing but
 * the agent should write its database; this bounds how stale a foreign write can be).
 */
export function createAppCatalog(deps: AppCatalogDeps): AppCatalog {
  const appsDir = resolve(deps.appsDir);
  const all = deps.db.prepare<[], CatalogRow>(
    `SELECT a.id, a.name, a.space, a.current_version_id AS versionId, a.updated_at AS updatedAt,
            CASE WHEN v.engine_version IS NULL THEN v.file END AS file, v.engine_version AS engineVersion,
            v.tables_json AS tablesJson
       FROM apps a LEFT JOIN app_versions v ON v.id = a.current_version_id AND v.app_id = a.id
      ORDER BY a.name, a.id`,
  );
  const ownChanges = deps.db.prepare<[], number>('SELECT total_changes()').pluck();
  const othersChanges = deps.db.prepare<[], number>('PRAGMA data_version').pluck();
  const now = deps.now ?? Date.now;
  const checkEvery = deps.otherWritersCheckMs ?? 1000;
  let snapshot: { own: number; others: number; list: AppSummary[]; byId: Map<string, CatalogRow> } | undefined;
  let othersCheckedAt = -Infinity;
  const resolvedFiles = new WeakMap<CatalogRow, string>();
  const engineVersions = new WeakMap<CatalogRow, EngineVersion>();
  let others = 0;

  const current = () => {
    const own = ownChanges.get()!;
    if (now() - othersCheckedAt >= checkEvery) {
      others = othersChanges.get()!;
      othersCheckedAt = now();
    }
    if (snapshot && snapshot.own === own && snapshot.others === others) return snapshot;
    const rows = all.all();
    snapshot = {
      own,
      others,
      list: rows.map(summaryOf),
      byId: new Map(rows.map((r) => [r.id, r])),
    };
    return snapshot;
  };

  return {
    list: () => current().list.map((a) => ({ ...a })),
    get(id) {
      const row = current().byId.get(id);
      if (!row) return undefined;
      return summaryOf(row);
    },
    currentVersionFile(id) {
      const row = current().byId.get(id);
      if (row?.file == null) return undefined;
      // Checked once per snapshot row: the row object is replaced when the catalog changes.
      let checked = resolvedFiles.get(row);
      if (checked === undefined) resolvedFiles.set(row, (checked = insideAppsDir(appsDir, row.file, id)));
      return checked;
    },
    currentEngineVersion(id) {
      const row = current().byId.get(id);
      if (row?.engineVersion == null) return undefined;
      let v = engineVersions.get(row);
      if (!v) engineVersions.set(row, (v = { version: row.engineVersion, tables: parseTables(row.tablesJson) }));
      return v;
    },
  };
}

const summaryOf = ({ file: _f, engineVersion: _e, tablesJson: _t, ...summary }: CatalogRow): AppSummary => summary;

function parseTables(json: string | null): EngineVersion['tables'] {
  try {
    const v: unknown = JSON.parse(json ?? '[]');
    return Array.isArray(v) ? (v as EngineVersion['tables']) : [];
  } catch {
    return [];
  }
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
