import { setImmediate as nextTurn } from 'node:timers/promises';
import { DuckDBDateValue, type DuckDBConnection, type DuckDBAppender } from '@duckdb/node-api';
import { FortError } from '../../lib/errors.js';
import { ident } from '../query/sql.js';

/** Rows appended between two turns of the event loop: the engine keeps answering queries during a load. */
const ROWS_PER_TURN = 1000;

export type DuckType = 'BIGINT' | 'DOUBLE' | 'VARCHAR' | 'BOOLEAN' | 'DATE';

const DAY_MS = 86_400_000;

/** Days since 1970-01-01 of a `YYYY-MM-DD` text, or undefined. */
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
 * Appends one value to a column of type `type`; false when the value is not one of that type.
 * Takes what SQLite gives (integers as bigints, booleans as 0/1) and what JSON gives (numbers,
 * true/false); integers are exact in BIGINT; text columns take numbers as text.
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
      if (typeof v === 'bigint' || (typeof v === 'number' && Number.isFinite(v))) a.appendDouble(Number(v));
      else return false;
      return true;
    case 'BOOLEAN':
      if (typeof v === 'boolean') a.appendBoolean(v);
      else if (v === 0n || v === 1n || v === 0 || v === 1) a.appendBoolean(Number(v) === 1);
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

/** A refusal naming the table (and the row and column), never a value. */
export const refusal = (table: string, why: string) =>
  new FortError('FORT_ERR_RELOAD_SOURCE', `${table}: ${why}`, { fatal: true });

/**
 * Creates `table` with `columns` and fills it through DuckDB's appender: every value checked
 * against its column's type, a turn of the event loop every ROWS_PER_TURN rows, where an aborted
 * load stops. Stops after `stopAfter` rows (the version writer refuses the table then). A failed
 * append drops the half-appended rows with the rest: the whole version is thrown away.
 * `failure` says what a thrown error that is not a FortError means (it may quote data).
 */
export async function appendRows(
  conn: DuckDBConnection,
  o: {
    table: string;
    columns: { name: string; type: DuckType }[];
    rows: Iterable<unknown[]> | AsyncIterable<unknown[]>;
    stopAfter: number;
    signal: AbortSignal;
    /** Why a row cannot be appended as it is (e.g. a BLOB), or undefined. */
    check?: (row: unknown[]) => string | undefined;
    failure: (err: unknown) => FortError;
  },
): Promise<number> {
  const { table, columns } = o;
  await conn.run(`CREATE TABLE ${ident(table)} (${columns.map((c) => `${ident(c.name)} ${c.type}`).join(', ')})`);
  const appender = await conn.createAppender(table);
  let rows = 0;
  try {
    for await (const row of o.rows) {
      if (rows === o.stopAfter) break;
      rows++;
      const wrong = o.check?.(row);
      if (wrong) throw refusal(table, `row ${rows}: ${wrong}`);
      for (let i = 0; i < columns.length; i++) {
        const c = columns[i]!;
        if (!append(appender, c.type, row[i]))
          throw refusal(table, `row ${rows}: column ${JSON.stringify(c.name)} is not a valid ${c.type}`);
      }
      appender.endRow();
      if (rows % ROWS_PER_TURN === 0) {
        await nextTurn();
        if (o.signal.aborted) throw new FortError('FORT_ERR_RELOAD_CANCELLED', `${table}: the load was cancelled`);
      }
    }
    appender.closeSync();
  } catch (err) {
    try {
      appender.clear();
      appender.closeSync();
    } catch {
      // Closed already (its last flush failed): the first error is the one to tell.
    }
    throw err instanceof FortError ? err : o.failure(err);
  }
  return rows;
}
