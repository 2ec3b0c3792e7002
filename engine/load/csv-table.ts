import type { DuckDBConnection } from '@duckdb/node-api';
import type { ConfinedFile } from '../../lib/confined-file.js';
import { FortError } from '../../lib/errors.js';
import { ident } from '../query/sql.js';
import type { TableWriter } from './version-file.js';

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
 * A CSV table read by DuckDB's own CSV reader with the definition's column types (no type
 * guessing). With `open`, DuckDB reads the checked open file (`/proc/self/fd/<n>`), never the
 * path again: what it reads is what was checked (lib/confined-file.ts).
 */
export function csvTable(t: CsvTableSource, open?: () => ConfinedFile): TableWriter {
  return {
    name: t.name,
    async write(conn, { stopAfter }) {
      const checked = open?.();
      try {
        return await readCsv(conn, checked?.procPath ?? t.file, stopAfter);
      } finally {
        checked?.close();
      }
    },
  };
  async function readCsv(conn: DuckDBConnection, file: string, stopAfter: number): Promise<number> {
    const columns = t.columns.map((c) => `${literal(c.name)}: ${literal(DUCKDB_TYPES[c.type])}`).join(', ');
    const read =
      `read_csv($1, header = ${t.header}, delim = ${literal(t.delimiter)}, quote = ${literal(t.quote)}, ` +
      `escape = ${literal(t.quote)}, auto_detect = false, strict_mode = true, columns = {${columns}})`;
    try {
      await conn.run(`CREATE TABLE ${ident(t.name)} AS SELECT * FROM ${read} LIMIT $2`, [file, stopAfter]);
    } catch (err) {
      throw sourceProblem(t.name, err);
    }
    return Number((await conn.runAndReadAll(`SELECT count(*) FROM ${ident(t.name)}`)).getRows()[0]![0]);
  }
}
