import { setImmediate as nextTurn } from 'node:timers/promises';
import type { DuckDBAppender } from '@duckdb/node-api';
import { DuckDBDateValue } from '@duckdb/node-api';
import { FortError } from '../../lib/errors.js';
import { ident } from '../query/sql.js';
import { openSourceDb, prepareSelect } from './sqlite-source.js';
import type { TableWriter } from './version-file.js';

/** One SQLite table of an app definition: a SELECT on a database already resolved inside the data directories. */
export interface SqliteTableSource {
  name: string;
  database: string;
  query: string;
}

/** Rows appended between two turns of the event loop: the engine keeps answering queries during a load. */
const ROWS_PER_TURN = 1000;

type DuckType = 'BIGINT' | 'DOUBLE' | 'VARCHAR' | 'BOOLEAN' | 'DATE';

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

const DAY_MS = 86_400_000;

/** Days since 1970-01-01 of a `YYYY-MM-DD` text (how SQLite's date functions write dates), or undefined. */
function epochDays(text: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const ms = Date.UTC(y, mo - 1, d);
  const back = new Date(ms);
  // Date.UTC rolls 2024-02-30 over into March: only a date that comes back as written is one.
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return undefined;
  return ms / DAY_MS;
}

/**
 * Appends one SQLite value (integers as bigints) to a column of type `type`; false when the value
 * is not one of that type. Integers are exact in BIGINT; text columns take numbers as text.
 */
function append(a: DuckDBAppender, type: DuckType, v: unknown): boolean {
  if (v === null) {
    a.appendNull();
    return true;
  }
  switch (type) {
    case 'BIGINT':
      if (typeof v === 'bigint') a.appendBigInt(v);
      else if (typeof v === 'number' && Number.isSafeInteger(v)) a.appendBigInt(BigInt(v));
      else return false;
      return true;
    case 'DOUBLE':
      if (typeof v === 'bigint' || typeof v === 'number') a.appendDouble(Number(v));
      else return false;
      return true;
    case 'BOOLEAN':
      if (v === 0n || v === 1n) a.appendBoolean(v === 1n);
      else if (v === 'true' || v === 'false') a.appendBoolean(v === 'true');
      else return false;
      return true;
    case 'DATE': {
      const days = typeof v === 'string' ? epochDays(v) : undefined;
      if (days === undefined) return false;
      a.appendDate(new DuckDBDateValue(days));
      return true;
    }
    case 'VARCHAR':
      if (typeof v === 'string') a.appendVarchar(v);
      else if (typeof v === 'bigint' || typeof v === 'number') a.appendVarchar(String(v));
      else return false;
      return true;
  }
}

/**
 * A SELECT on a SQLite database into a DuckDB table through DuckDB's appender: the rows streamed
 * (`iterate`), a turn of the event loop every ROWS_PER_TURN rows, where an aborted load stops.
 * Errors name the table, the row and the column, never a value. BLOBs are refused: an app
 * version holds what queries can show.
 */
export function sqliteTable(t: SqliteTableSource): TableWriter {
  const refused = (why: string) => new FortError('FORT_ERR_RELOAD_SOURCE', `${t.name}: ${why}`, { fatal: true });
  return {
    name: t.name,
    async write(conn, { stopAfter, signal }) {
      const db = openSourceDb(t.name, t.database);
      try {
        const stmt = prepareSelect(t.name, db, t.query).raw(true).safeIntegers(true);
        const columns = stmt.columns().map((c) => ({ name: c.name, declared: c.type, type: duckType(c.type) }));
        const blob = columns.find((c) => /BLOB/i.test(c.declared ?? ''));
        if (blob) throw refused(`column ${JSON.stringify(blob.name)} is a BLOB, which an app version cannot hold`);
        await conn.run(
          `CREATE TABLE ${ident(t.name)} (${columns.map((c) => `${ident(c.name)} ${c.type}`).join(', ')})`,
        );
        const appender = await conn.createAppender(t.name);
        let rows = 0;
        try {
          for (const row of stmt.iterate() as IterableIterator<unknown[]>) {
            if (rows === stopAfter) break;
            rows++;
            columns.forEach((c, i) => {
              const v = row[i];
              if (Buffer.isBuffer(v))
                throw refused(
                  `row ${rows}: column ${JSON.stringify(c.name)} holds a BLOB, which an app version cannot hold`,
                );
              if (!append(appender, c.type, v))
                throw refused(`row ${rows}: column ${JSON.stringify(c.name)} is not a valid ${c.type}`);
            });
            appender.endRow();
            if (rows % ROWS_PER_TURN === 0) {
              await nextTurn();
              if (signal.aborted) throw new FortError('FORT_ERR_RELOAD_CANCELLED', `${t.name}: the load was cancelled`);
            }
          }
          appender.closeSync();
        } catch (err) {
          // The half-appended row is dropped with the rest: the whole version is thrown away.
          try {
            appender.clear();
            appender.closeSync();
          } catch {
            // Closed already (its last flush failed): the first error is the one to tell.
          }
          throw err instanceof FortError ? err : readFailure(t.name, err);
        }
        return rows;
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
