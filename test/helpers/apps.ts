import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { quoteIdent } from '../../agent/apps/version-reader.js';
import { commitAppVersion } from '../../agent/apps/versions.js';
import type { Reload, ReloadQueue } from '../../agent/reloads/queue.js';
import { eventually } from './fort.js';

// App fixtures for tests and benchmarks: an app and a version written the way a reload commits
// one, without running a load. Test code, so it never ships with the agent.

export interface SeedTable {
  columns: string[];
  rows: unknown[][];
}

export interface SeedAppOptions {
  id: string;
  name: string;
  space: string;
  /** Tables of the new version; undefined = an app without any version yet (never reloaded). */
  tables?: Record<string, SeedTable>;
  /** `apps.definition` (JSON text); default `{}`. */
  definition?: string;
  now?: Date;
}

export interface SeededApp {
  versionId: number | null;
  /** Absolute path of the version file, when one was written. */
  file?: string;
}

const APP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Create (or update) an app and, with `tables`, give it a new current version the way a
 * reload does (`commitAppVersion`). For tests and benchmarks; reloads load real sources.
 */
export function seedApp(db: Database.Database, appsDir: string, app: SeedAppOptions): SeededApp {
  if (!APP_ID.test(app.id)) throw new RangeError(`app id ${JSON.stringify(app.id)} is not usable as a directory name`);
  const ts = (app.now ?? new Date()).toISOString();
  const upsertApp = () =>
    db
      .prepare(
        `INSERT INTO apps (id, name, space, definition, current_version_id, created_at, updated_at) VALUES (?, ?, ?, ?, NULL, ?, ?)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, space = excluded.space, definition = excluded.definition, updated_at = excluded.updated_at`,
      )
      .run(app.id, app.name, app.space, app.definition ?? '{}', ts, ts);

  if (app.tables === undefined) {
    db.transaction(upsertApp)();
    const current = db.prepare('SELECT current_version_id FROM apps WHERE id = ?').pluck().get(app.id) as number | null;
    return { versionId: current };
  }

  const dir = join(appsDir, app.id);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.seed-${randomBytes(6).toString('hex')}.sqlite.tmp`);
  try {
    const rowCount = writeVersionFile(tmp, app.tables);
    const contentHash = createHash('sha256').update(readFileSync(tmp)).digest('hex');
    const { versionId, file } = db.transaction(() => {
      upsertApp();
      return commitAppVersion(db, appsDir, app.id, { tmpFile: tmp, rowCount, contentHash }, new Date(ts));
    })();
    return { versionId, file };
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Write the tables into a new SQLite file (one transaction, rollback journal: nothing left beside it). */
function writeVersionFile(path: string, tables: Record<string, SeedTable>): number {
  const out = new Database(path);
  try {
    let rows = 0;
    out.transaction(() => {
      for (const [name, t] of Object.entries(tables)) {
        if (t.columns.length === 0) throw new RangeError(`table ${JSON.stringify(name)} needs at least one column`);
        out.exec(`CREATE TABLE ${quoteIdent(name)} (${t.columns.map(quoteIdent).join(', ')})`);
        const insert = out.prepare(`INSERT INTO ${quoteIdent(name)} VALUES (${t.columns.map(() => '?').join(', ')})`);
        for (const row of t.rows) {
          if (row.length !== t.columns.length)
            throw new RangeError(
              `table ${JSON.stringify(name)}: row has ${row.length} values for ${t.columns.length} columns`,
            );
          insert.run(...row.map((v) => (typeof v === 'boolean' ? Number(v) : v)));
          rows += 1;
        }
      }
    })();
    return rows;
  } finally {
    out.close();
  }
}

/** A reload once it has ended (neither queued nor running), waited for with a deadline. */
export function reloadEnded(queue: Pick<ReloadQueue, 'get'>, id: string, timeoutMs = 10_000): Promise<Reload> {
  return eventually(
    () => {
      const r = queue.get(id);
      return r && !['queued', 'running'].includes(r.state) ? r : undefined;
    },
    timeoutMs,
    `reload ${id} to end`,
  );
}
