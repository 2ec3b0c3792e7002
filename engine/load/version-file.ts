import { closeSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { FortError } from '../../lib/errors.js';
import { fsyncDir } from '../../lib/files.js';

export interface VersionLimits {
  /** DuckDB's memory_limit for the load, e.g. '512MB'. */
  memoryLimit: string;
  threads: number;
  /**
   * More rows in one table fail the load (FORT_ERR_RELOAD_TOO_LARGE), counted once it is read: a
   * LIMIT in the read would hold DuckDB's parallel CSV reader back. Memory stays within
   * memory_limit meanwhile (DuckDB spills into the version file).
   */
  maxRows: number;
}

/** One table of a version, whatever its source: creates and fills the table `name` on `conn`. */
export interface TableWriter {
  name: string;
  /**
   * Returns the rows written. A writer may stop once it has written `stopAfter` rows (one more
   * than allowed: the version writer refuses the table then). A long write checks `signal`
   * between rows; a DuckDB statement is interrupted by the version writer when it aborts.
   */
  write(conn: DuckDBConnection, o: { stopAfter: number; signal: AbortSignal }): Promise<number>;
}

export const loadCancelled = (id: string) =>
  new FortError('FORT_ERR_RELOAD_CANCELLED', `version ${id}: the load was cancelled`);

/** Every file a DuckDB database at `path` may have beside it (its WAL, its spill directory). */
function removeDatabase(path: string) {
  rmSync(path, { force: true });
  rmSync(`${path}.wal`, { force: true });
  rmSync(`${path}.tmp`, { recursive: true, force: true });
}

/**
 * Writes a new app version: one DuckDB file written as `<dir>/<id>.duckdb.partial` by the tables'
 * writers, checkpointed, fsynced and renamed `<dir>/<id>.duckdb`: a reader never sees half a
 * version, and a failed or cancelled load leaves nothing. Versions are immutable once renamed.
 * Aborting `signal` interrupts the statement running and fails the load FORT_ERR_RELOAD_CANCELLED;
 * once renamed, the version stays (the load was done before the abort could count).
 */
export async function writeVersion(o: {
  dir: string;
  id: string;
  tables: TableWriter[];
  limits: VersionLimits;
  signal?: AbortSignal;
}): Promise<{ file: string; tables: { name: string; rows: number }[] }> {
  const signal = o.signal ?? new AbortController().signal;
  const file = join(o.dir, `${o.id}.duckdb`);
  const partial = `${file}.partial`;
  removeDatabase(partial);
  const instance = await DuckDBInstance.create(partial, {
    memory_limit: o.limits.memoryLimit,
    threads: String(o.limits.threads),
    // The load reads only the files it is given: no extensions fetched, no other file opened by SQL.
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
  });
  const tables: { name: string; rows: number }[] = [];
  try {
    const conn = await instance.connect();
    const interrupt = () => conn.interrupt();
    signal.addEventListener('abort', interrupt, { once: true });
    try {
      for (const t of o.tables) {
        if (signal.aborted) throw loadCancelled(o.id);
        const rows = await t.write(conn, { stopAfter: o.limits.maxRows + 1, signal });
        if (rows > o.limits.maxRows)
          throw new FortError('FORT_ERR_RELOAD_TOO_LARGE', `${t.name}: more than ${o.limits.maxRows} rows`);
        tables.push({ name: t.name, rows });
      }
      if (signal.aborted) throw loadCancelled(o.id);
      await conn.run('CHECKPOINT');
    } catch (err) {
      // An interrupted statement fails with DuckDB's own error: the abort is the reason.
      throw signal.aborted ? loadCancelled(o.id) : err;
    } finally {
      signal.removeEventListener('abort', interrupt);
      conn.closeSync();
    }
  } catch (err) {
    instance.closeSync();
    removeDatabase(partial);
    throw err;
  }
  instance.closeSync();
  try {
    const fd = openSync(partial, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (signal.aborted) throw loadCancelled(o.id);
  } catch (err) {
    removeDatabase(partial);
    throw err;
  }
  renameSync(partial, file);
  fsyncDir(dirname(file));
  return { file, tables };
}
