import Database from 'better-sqlite3';
import { ConfinedFileRefused, openConfined, openedAsChecked, type ConfinedFile } from '../../../lib/confined-file.js';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ColumnSpec, TableSource } from './types.js';
import { BATCH_ROWS, cancelled, rowsOf, sourceError, sourceFailure } from './types.js';
import { firstKeyword } from '../../../lib/sql-keyword.js';

/** Rows read between two turns of the event loop: the agent keeps serving while a reload runs. */
const ROWS_PER_TURN = 1000;

/** The source opened read-only at the SQLite level too: `query_only` refuses writes whatever the SQL. */
export function openSourceDb(file: string): Database.Database {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma('query_only = ON');
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/**
 * Why `query` is not a single read-only SELECT (or WITH ... SELECT) on `db`, or undefined.
 * PRAGMA also returns rows and is a "reader", hence the keyword check on top of
 * better-sqlite3's `reader`/`readonly` flags.
 */
export function selectProblem(db: Database.Database, query: string): string | undefined {
  let stmt: Database.Statement;
  try {
    stmt = db.prepare(query);
  } catch (err) {
    const message = (err as Error).message;
    if (/more than one statement/.test(message)) return 'expected exactly one SQL statement';
    if (/contains no statements/.test(message)) return 'expected a SELECT statement';
    return `the SQL does not compile: ${message}`;
  }
  const keyword = firstKeyword(query);
  if (keyword !== 'SELECT' && keyword !== 'WITH')
    return `expected a SELECT (or WITH ... SELECT) statement, got ${keyword || 'something else'}`;
  if (!stmt.reader || !stmt.readonly) return 'expected a read-only statement that returns rows';
  const names = stmt.columns().map((c) => c.name);
  // Table columns are case-insensitive in SQLite: "ID" and "id" would collide.
  const dup = names.find((n, i) => names.findIndex((m) => m.toLowerCase() === n.toLowerCase()) !== i);
  if (dup !== undefined) return `the query returns two columns named "${dup}"; give them distinct names with AS`;
  return undefined;
}

/** The result columns of a checked query, typed `any`: values are kept as SQLite returns them. */
function resultColumns(file: string, query: string, table: string): ColumnSpec[] {
  const db = openSourceDb(file);
  try {
    const problem = selectProblem(db, query);
    if (problem) throw sourceError(table, problem);
    return db
      .prepare(query)
      .columns()
      .map((c) => ({ name: c.name, type: 'any' as const }));
  } finally {
    db.close();
  }
}

/**
 * The database at `file` opened by SQLite, proven (from the descriptors, not the path) to be the
 * regular file inside the data dirs that was checked: a path swapped for a symlink between the
 * check and SQLite's open is refused, not read.
 */
function openCheckedDb(table: string, file: string, dataDirs: string[]): Database.Database {
  let checked: ConfinedFile;
  try {
    checked = openConfined(file, dataDirs);
  } catch (err) {
    if (err instanceof ConfinedFileRefused) throw sourceError(table, `the database ${err.message}`);
    throw err;
  }
  try {
    const db = openSourceDb(file);
    if (openedAsChecked(checked)) return db;
    db.close();
    throw sourceError(table, 'the database file changed while it was opened (a symbolic link or a rename)');
  } finally {
    checked.close();
  }
}

/**
 * A SELECT over a SQLite database already confined to the data dirs (`file` is its real
 * path). Rows are streamed with `iterate()`, integers as bigints (ids beyond 2^53 stay
 * exact), handed on in batches, with a turn of the event loop every ROWS_PER_TURN rows. The
 * columns are known at open; the query runs again on its own connection when read.
 */
export function sqliteSource(
  table: string,
  file: string,
  query: string,
  /** The data dirs: the database SQLite opens is proven to be the one checked inside them. */
  dataDirs?: string[],
): TableSource {
  let columns: ColumnSpec[];
  try {
    columns = resultColumns(file, query, table);
  } catch (err) {
    throw sourceFailure(table, err, new AbortController().signal);
  }
  async function* batches(signal: AbortSignal): AsyncGenerator<unknown[][]> {
    if (signal.aborted) throw cancelled(table);
    let db: Database.Database | undefined;
    let it: IterableIterator<unknown[]> | undefined;
    try {
      db = dataDirs ? openCheckedDb(table, file, dataDirs) : openSourceDb(file);
      const problem = selectProblem(db, query); // the file may have changed since the check
      if (problem) throw sourceError(table, problem);
      const stmt = db.prepare(query).raw(true).safeIntegers(true);
      if (stmt.columns().length !== columns.length)
        throw sourceError(table, "the query's columns changed while the reload ran");
      it = stmt.iterate() as IterableIterator<unknown[]>;
      let n = 0;
      let batch: unknown[][] = [];
      for (const row of it) {
        batch.push(row);
        if (batch.length === BATCH_ROWS) {
          yield batch;
          batch = [];
        }
        if (++n % ROWS_PER_TURN === 0) {
          await nextTurn();
          if (signal.aborted) throw cancelled(table);
        }
      }
      if (batch.length) yield batch;
    } catch (err) {
      throw sourceFailure(table, err, signal);
    } finally {
      it?.return?.();
      db?.close();
    }
  }
  return { table, columns, batches, rows: (signal) => rowsOf(batches(signal)) };
}
