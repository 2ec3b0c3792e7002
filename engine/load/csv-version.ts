import { closeSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { FortError } from '../../lib/errors.js';
import { fsyncDir } from '../../lib/files.js';
import { ident } from '../query/sql.js';

/** A definition's column type → the DuckDB type its cells load as. */
export const DUCKDB_TYPES = {
  string: 'VARCHAR',
  integer: 'BIGINT',
  number: 'DOUBLE',
  boolean: 'BOOLEAN',
  date: 'DATE',
} as const;

/** One CSV table of an app definition, its file already resolved inside the allowed data directories. */
export interface CsvTableSource {
  name: string;
  file: string;
  delimiter: string;
  quote: string;
  header: boolean;
  columns: { name: string; type: keyof typeof DUCKDB_TYPES }[];
}

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

/** A SQL string literal. */
const literal = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * What went wrong with a source, in words that carry no cell value (DuckDB's own message quotes
 * the line and the value): the table, the line, and the column and type when a cell did not
 * convert.
 */
export function sourceProblem(table: string, err: unknown): FortError {
  const text = err instanceof Error ? err.message : String(err);
  const line = /CSV Error on Line: (\d+)/.exec(text)?.[1];
  const where = `${table}${line ? `: line ${line}` : ''}`;
  const conversion = /Error when converting column "([^"\n]{1,128})"\. Could not convert string .* to '([A-Z]+)'/.exec(
    text,
  );
  const counts = /Expected Number of Columns: (\d+) Found: (\d+)/.exec(text);
  const why = conversion
    ? `column ${JSON.stringify(conversion[1])} is not a valid ${conversion[2]}`
    : counts
      ? `expected ${counts[1]} fields, found ${counts[2]}`
      : /No files found|Cannot open file/.test(text)
        ? 'the file cannot be read'
        : 'not valid CSV for this definition';
  return new FortError('FORT_ERR_RELOAD_SOURCE', `${where}: ${why}`, { fatal: true });
}

/**
 * Loads CSV tables into a new app version: one DuckDB file written as `<dir>/<id>.duckdb.partial`
 * with DuckDB's own CSV reader (the definition's column types, no type guessing), checkpointed,
 * fsynced and renamed `<dir>/<id>.duckdb`: a reader never sees half a version, and a failed load
 * leaves nothing. Versions are immutable once renamed.
 */
export async function writeCsvVersion(o: {
  dir: string;
  id: string;
  tables: CsvTableSource[];
  limits: VersionLimits;
}): Promise<{ file: string; tables: { name: string; rows: number }[] }> {
  const file = join(o.dir, `${o.id}.duckdb`);
  const partial = `${file}.partial`;
  rmSync(partial, { force: true });
  rmSync(`${partial}.wal`, { force: true });
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
    try {
      for (const t of o.tables) {
        const columns = t.columns.map((c) => `${literal(c.name)}: ${literal(DUCKDB_TYPES[c.type])}`).join(', ');
        const read =
          `read_csv($1, header = ${t.header}, delim = ${literal(t.delimiter)}, quote = ${literal(t.quote)}, ` +
          `escape = ${literal(t.quote)}, auto_detect = false, strict_mode = true, columns = {${columns}})`;
        try {
          await conn.run(`CREATE TABLE ${ident(t.name)} AS SELECT * FROM ${read} LIMIT $2`, [
            t.file,
            o.limits.maxRows + 1,
          ]);
        } catch (err) {
          throw sourceProblem(t.name, err);
        }
        const rows = Number((await conn.runAndReadAll(`SELECT count(*) FROM ${ident(t.name)}`)).getRows()[0]![0]);
        if (rows > o.limits.maxRows)
          throw new FortError('FORT_ERR_RELOAD_TOO_LARGE', `${t.name}: more than ${o.limits.maxRows} rows`);
        tables.push({ name: t.name, rows });
      }
      await conn.run('CHECKPOINT');
    } finally {
      conn.closeSync();
    }
  } catch (err) {
    instance.closeSync();
    rmSync(partial, { force: true });
    rmSync(`${partial}.wal`, { force: true });
    throw err;
  }
  instance.closeSync();
  const fd = openSync(partial, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(partial, file);
  fsyncDir(dirname(file));
  return { file, tables };
}
