import { openedAsChecked, type ConfinedFile } from '../../lib/confined-file.js';
import { FortError } from '../../lib/errors.js';
import { appendRows, refusal, type DuckType } from './append.js';
import { openSourceDb, prepareSelect } from './sqlite-source.js';
import type { TableWriter } from './version-file.js';

/** One SQLite table of an app definition: a SELECT on a database already resolved inside the data directories. */
export interface SqliteTableSource {
  name: string;
  database: string;
  query: string;
}

/**
 * The DuckDB type of a result column from its SQLite declared type (the column's, through views
 * too; an expression has none). SQLite stores any value in any column, so each value is still
 * checked against it when appended.
 */
export function duckType(declared: string | null): DuckType {
  const base = (declared ?? '').toUpperCase().replace(/\(.*$/, '').trim();
  if (/^(INTEGER|INT|BIGINT|SMALLINT|TINYINT|MEDIUMINT|INT2|INT8|UNSIGNED BIG INT)$/.test(base)) return 'BIGINT';
  if (/^(REAL|FLOAT|DOUBLE|DOUBLE PRECISION|NUMERIC|DECIMAL)$/.test(base)) return 'DOUBLE';
  if (/^(BOOLEAN|BOOL)$/.test(base)) return 'BOOLEAN';
  if (base === 'DATE') return 'DATE';
  // TEXT, VARCHAR, CHAR, CLOB and anything else (DATETIME, no type at all): the value as text.
  return 'VARCHAR';
}

/**
 * A SELECT on a SQLite database into a DuckDB table through DuckDB's appender: the rows streamed
 * (`iterate`), a turn of the event loop every ROWS_PER_TURN rows, where an aborted load stops.
 * Errors name the table, the row and the column, never a value. BLOBs are refused: an app
 * version holds what queries can show.
 */
export function sqliteTable(t: SqliteTableSource, open?: () => ConfinedFile): TableWriter {
  return {
    name: t.name,
    async write(conn, { stopAfter, signal }) {
      // SQLite opens by path: proven afterwards, from the descriptors, to have opened the checked file.
      const checked = open?.();
      let db: ReturnType<typeof openSourceDb>;
      try {
        db = openSourceDb(t.name, t.database);
        if (checked && !openedAsChecked(checked)) {
          db.close();
          throw refusal(t.name, 'the database file changed while it was opened (a symbolic link or a rename)');
        }
      } finally {
        checked?.close();
      }
      try {
        const stmt = prepareSelect(t.name, db, t.query).raw(true).safeIntegers(true);
        const columns = stmt.columns().map((c) => ({ name: c.name, declared: c.type, type: duckType(c.type) }));
        const blob = columns.find((c) => /BLOB/i.test(c.declared ?? ''));
        if (blob)
          throw refusal(t.name, `column ${JSON.stringify(blob.name)} is a BLOB, which an app version cannot hold`);
        return await appendRows(conn, {
          table: t.name,
          columns,
          rows: stmt.iterate() as IterableIterator<unknown[]>,
          stopAfter,
          signal,
          check: (row) => {
            const i = row.findIndex((v) => Buffer.isBuffer(v));
            return i < 0
              ? undefined
              : `column ${JSON.stringify(columns[i]!.name)} holds a BLOB, which an app version cannot hold`;
          },
          failure: (err) => readFailure(t.name, err),
        });
      } finally {
        db.close();
      }
    },
  };
}

/**
 * A failure while reading or appending, by SQLite's code (SQLITE_BUSY, SQLITE_CORRUPT …): the
 * message, and so the cause, are left out since they may quote data.
 */
function readFailure(table: string, err: unknown): FortError {
  const code = (err as { code?: unknown }).code;
  const why = typeof code === 'string' && /^SQLITE_[A-Z_]+$/.test(code) ? code : 'an error';
  return new FortError('FORT_ERR_RELOAD_SOURCE', `${table}: reading the database failed (${why})`);
}
