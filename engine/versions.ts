import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { FortError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { QueryTarget } from './query/run.js';
import { readTableSchema, type TableSchema } from './query/table-schema.js';

/** An app or version id as it may appear in a path: never `..`, a slash or a dot first. */
const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

function checkId(what: 'app' | 'version', id: string): string {
  if (!ID.test(id)) throw new FortError('FORT_ERR_BAD_REQUEST', `${what}: expected 1-128 letters, digits, "_" or "-"`);
  return id;
}

interface Open {
  instance: DuckDBInstance;
  schemas: Map<string, TableSchema>;
  /** Queries running on it: it is closed only when none is. */
  busy: number;
  lastUsed: number;
}

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

  function closeIdle() {
    const idle = [...open.entries()].filter(([, v]) => v.busy === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [key, v] of idle) {
      if (open.size <= o.maxOpen) break;
      open.delete(key);
      v.instance.closeSync();
    }
  }

  async function get(app: string, version: string): Promise<Open> {
    const key = `${app}/${version}`;
    const found = open.get(key);
    if (found) return found;
    const pending = opening.get(key);
    if (pending) return pending;
    const path = file(app, version);
    if (!existsSync(path))
      throw new FortError('FORT_ERR_NOT_FOUND', `no version ${JSON.stringify(version)} of app ${JSON.stringify(app)}`);
    const p = DuckDBInstance.create(path, {
      access_mode: 'READ_ONLY',
      memory_limit: o.memoryLimit,
      threads: String(o.threads),
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
      // Queries read this version only: no file, URL or other database through SQL.
      enable_external_access: 'false',
    }).then((instance) => {
      const v: Open = { instance, schemas: new Map(), busy: 0, lastUsed: Date.now() };
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

  return {
    file,
    appDir,
    /**
     * A connection to one table of a version for `run`, closed after it; the version stays open
     * (and cannot be closed) meanwhile.
     */
    async use<T>(app: string, version: string, table: string, run: (t: QueryTarget) => Promise<T>): Promise<T> {
      const v = await get(app, version);
      v.busy++;
      v.lastUsed = Date.now();
      let conn: Awaited<ReturnType<DuckDBInstance['connect']>> | undefined;
      try {
        conn = await v.instance.connect();
        let schema = v.schemas.get(table);
        if (!schema) {
          schema = await readTableSchema(conn, table);
          v.schemas.set(table, schema);
        }
        return await run({ conn, schema, version });
      } finally {
        conn?.closeSync();
        v.busy--;
        closeIdle();
      }
    },
    openCount: () => open.size,
    close() {
      for (const v of open.values()) v.instance.closeSync();
      open.clear();
    },
  };
}
export type VersionStore = ReturnType<typeof createVersionStore>;
