import type Database from 'better-sqlite3';
import type { AppDefinition } from './definition.js';
import { NotFoundError } from './errors.js';
import type { AdminApp } from '../../lib/admin-client.js';

/** An app as the admin API lists it (the wire shape lives in lib/admin-client.ts). */
export type RegisteredApp = AdminApp;

/**
 * Apps as the operator registers them (admin API only, never a cloud event): the definition
 * is parsed and its sources checked against the data directories before anything is stored,
 * then kept as JSON in `apps.definition`. Updating an app keeps its versions.
 */
export function createAppRegistry(opts: {
  db: Database.Database;
  sources: { dataDirs: string[]; httpAllowedHosts: string[] };
  now?: () => Date;
}) {
  const { db } = opts;
  const now = opts.now ?? (() => new Date());
  const exists = db.prepare<[string], number>('SELECT 1 FROM apps WHERE id = ?').pluck();
  const upsert = db.prepare(
    `INSERT INTO apps (id, name, space, definition, current_version_id, created_at, updated_at) VALUES (@id, @name, @space, @definition, NULL, @ts, @ts)
     ON CONFLICT (id) DO UPDATE SET name = excluded.name, space = excluded.space, definition = excluded.definition, updated_at = excluded.updated_at`,
  );
  const definitionOf = db.prepare<[string], string>('SELECT definition FROM apps WHERE id = ?').pluck();
  const all = db.prepare<
    [],
    {
      id: string;
      name: string;
      space: string;
      versionId: number | null;
      updatedAt: string;
      definition: string;
      rows: number | null;
    }
  >(
    `SELECT a.id, a.name, a.space, a.current_version_id AS versionId, a.updated_at AS updatedAt, a.definition, v.row_count AS rows
       FROM apps a LEFT JOIN app_versions v ON v.id = a.current_version_id ORDER BY a.id`,
  );

  return {
    async register(
      text: string,
      format: 'toml' | 'json',
      _by: string,
    ): Promise<{ app: { id: string; name: string; space: string }; created: boolean }> {
      // Loaded when first needed: the definition schema costs idle RSS a fort without apps never uses.
      const { checkDefinitionSources, parseAppDefinition } = await import('./definition.js');
      const def = parseAppDefinition(text, format);
      checkDefinitionSources(def, opts.sources);
      const created = db.transaction(() => {
        const isNew = exists.get(def.id) === undefined;
        upsert.run({
          id: def.id,
          name: def.name,
          space: def.space,
          definition: JSON.stringify(def),
          ts: now().toISOString(),
        });
        return isNew;
      })();
      return { app: { id: def.id, name: def.name, space: def.space }, created };
    },
    /** The stored definition, parsed again (a row edited by hand is refused like a bad file). */
    async definition(appId: string): Promise<AppDefinition> {
      const text = definitionOf.get(appId);
      if (text === undefined) throw new NotFoundError(`no app ${appId} on this fort`);
      const { parseAppDefinition } = await import('./definition.js');
      return parseAppDefinition(text, 'json');
    },
    list(): RegisteredApp[] {
      return all.all().map(({ definition, ...a }) => ({ ...a, tables: tablesOf(definition) }));
    },
  };
}
export type AppRegistry = ReturnType<typeof createAppRegistry>;

function tablesOf(json: string): string[] {
  try {
    const t = (JSON.parse(json) as { tables?: { name?: unknown }[] }).tables;
    return Array.isArray(t) ? t.map((x) => String(x.name)) : [];
  } catch {
    return [];
  }
}
