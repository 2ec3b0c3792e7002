import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { FortError } from '../lib/errors.js';
import { fsyncDir } from '../lib/files.js';
import type { Logger } from '../lib/logger.js';
import type { QueryTarget } from './query/run.js';
import { ident } from './query/sql.js';
import { readTableSchema, type SchemaField, type TableSchema } from './query/table-schema.js';

/** An app or version id as it may appear in a path: never `..`, a slash or a dot first. */
const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

function checkId(what: 'app' | 'version', id: string): string {
  if (!ID.test(id)) throw new FortError('FORT_ERR_BAD_REQUEST', `${what}: expected 1-128 letters, digits, "_" or "-"`);
  return id;
}

/** A table of a version as the engine describes it. */
export interface VersionTable {
  name: string;
  rows: number;
  fields: SchemaField[];
}

interface Open {
  instance: DuckDBInstance;
  schemas: Map<string, TableSchema>;
  /** Its tables once asked for (a version never changes). */
  tables?: VersionTable[];
  /** Queries running on it: it is closed only when none is. */
  busy: number;
  lastUsed: number;
  closed: boolean;
  /** Deleted while queries ran on it: the last one to finish closes it and removes the file. */
  doomed: boolean;
}

const notFound = (app: string, version: string) =>
  new FortError('FORT_ERR_NOT_FOUND', `no version ${JSON.stringify(version)} of app ${JSON.stringify(app)}`);

/**
 * The app versions the engine serves: `<dir>/apps/<app>/<version>.duckdb`, immutable, opened
 * read-only on first use and kept open (at most `maxOpen`, the least recently used idle one
 * closed first). Each query gets its own connection, so a timeout interrupts only it.
 */
export function createVersionStore(o: {
  dir: string;
  memoryLimit: string;
  threads: number;
  maxOpen: number;
  log: Logger;
}) {
  const open = new Map<string, Open>();
  const opening = new Map<string, Promise<Open>>();

  const appDir = (app: string) => join(o.dir, 'apps', checkId('app', app));
  const file = (app: string, version: string) => join(appDir(app), `${checkId('version', version)}.duckdb`);

  function close(key: string, v: Open) {
    open.delete(key);
    v.closed = true;
    v.instance.closeSync();
  }

  /** The version's file gone for good; its directory synced so that it stays gone after a crash. */
  function removeFile(app: string, version: string) {
    const path = file(app, version);
    rmSync(path, { force: true });
    rmSync(`${path}.wal`, { force: true });
    fsyncDir(appDir(app));
    o.log.info({ app, version }, 'app version deleted');
  }

  function closeIdle() {
    const idle = [...open.entries()].filter(([, v]) => v.busy === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [key, v] of idle) {
      if (open.size <= o.maxOpen) break;
      close(key, v);
    }
  }

  async function get(app: string, version: string): Promise<Open> {
    const key = `${app}/${version}`;
    const found = open.get(key);
    if (found) return found;
    const pending = opening.get(key);
    if (pending) return pending;
    const path = file(app, version);
    if (!existsSync(path)) throw notFound(app, version);
    const p = DuckDBInstance.create(path, {
      access_mode: 'READ_ONLY',
      memory_limit: o.memoryLimit,
      threads: String(o.threads),
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
      // Queries read this version only: no file, URL or other database through SQL.
      enable_external_access: 'false',
    }).then((instance) => {
      const v: Open = { instance, schemas: new Map(), busy: 0, lastUsed: Date.now(), closed: false, doomed: false };
      open.set(key, v);
      o.log.info({ app, version }, 'app version opened');
      return v;
    });
    opening.set(key, p);
    try {
      return await p;
    } finally {
      opening.delete(key);
    }
  }

  /**
   * A connection to a version for `run`, closed after it; the version stays open (and cannot be
   * closed) meanwhile. A version deleted meanwhile is not found.
   */
  async function withVersion<T>(
    app: string,
    version: string,
    run: (conn: DuckDBConnection, v: Open) => Promise<T>,
  ): Promise<T> {
    let v = await get(app, version);
    // Closed (least recently used) between its opening and now, by another request's turn: again.
    while (v.closed && !v.doomed) v = await get(app, version);
    if (v.doomed) throw notFound(app, version);
    v.busy++;
    v.lastUsed = Date.now();
    let conn: DuckDBConnection | undefined;
    try {
      conn = await v.instance.connect();
      return await run(conn, v);
    } finally {
      conn?.closeSync();
      v.busy--;
      if (v.doomed && v.busy === 0 && !v.closed) {
        close(`${app}/${version}`, v);
        removeFile(app, version);
      }
      closeIdle();
    }
  }

  async function schemaOf(conn: DuckDBConnection, v: Open, table: string): Promise<TableSchema> {
    let schema = v.schemas.get(table);
    if (!schema) {
      schema = await readTableSchema(conn, table);
      v.schemas.set(table, schema);
    }
    return schema;
  }

  return {
    file,
    appDir,
    /** A connection to one table of a version for `run` (see withVersion). */
    async use<T>(app: string, version: string, table: string, run: (t: QueryTarget) => Promise<T>): Promise<T> {
      return withVersion(app, version, async (conn, v) =>
        run({ conn, schema: await schemaOf(conn, v, table), version }),
      );
    },
    /** The tables of a version in the order they were loaded, with their rows and fields. */
    async tables(app: string, version: string): Promise<VersionTable[]> {
      return withVersion(app, version, async (conn, v) => {
        if (v.tables) return v.tables;
        const names = (
          await conn.runAndReadAll(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY table_oid",
          )
        ).getRows() as [string][];
        const tables: VersionTable[] = [];
        for (const [name] of names) {
          const count = await conn.runAndReadAll(`SELECT count(*) FROM ${ident(name)}`);
          const schema = await schemaOf(conn, v, name);
          tables.push({ name, rows: Number(count.getRows()[0]![0]), fields: [...schema.fields.values()] });
        }
        v.tables = tables;
        return tables;
      });
    },
    /**
     * Deletes a version: closed and its file removed at once when no query runs on it, else
     * when the last one finishes (new queries do not find it meanwhile). Unknown: FORT_ERR_NOT_FOUND.
     */
    async remove(app: string, version: string): Promise<void> {
      const key = `${app}/${version}`;
      // Opening: let it finish, so that it is closed below rather than left open on a deleted file.
      await opening.get(key)?.catch(() => undefined);
      const v = open.get(key);
      if (v?.doomed) return;
      if (!existsSync(file(app, version))) throw notFound(app, version);
      if (v && v.busy > 0) {
        v.doomed = true;
        o.log.info({ app, version, queries: v.busy }, 'app version deleted once its queries finish');
        return;
      }
      if (v) close(key, v);
      removeFile(app, version);
    },
    /** The app's versions (complete ones: a load still running is not one), deleted ones not. */
    list(app: string): string[] {
      const dir = appDir(app);
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        return [];
      }
      return names
        .filter((n) => n.endsWith('.duckdb'))
        .map((n) => n.slice(0, -'.duckdb'.length))
        .filter((v) => !open.get(`${app}/${v}`)?.doomed);
    },
    openCount: () => open.size,
    /** At stop: every version closed; one deleted while queries ran on it is removed now, not found again at start. */
    close() {
      for (const [key, v] of [...open]) {
        close(key, v);
        const [app, version] = key.split('/') as [string, string];
        if (v.doomed) removeFile(app, version);
      }
    },
  };
}
export type VersionStore = ReturnType<typeof createVersionStore>;
