import Database from 'better-sqlite3';
import { FortError } from '../../lib/errors.js';
import { firstKeyword } from '../../lib/sql-keyword.js';

/**
 * A SQLite source database as a load reads it: read-only twice over (the file opened read-only,
 * and `query_only` refusing writes whatever the SQL), and one checked SELECT. The agent has rules
 * of its own for the same thing (agent/apps/connectors/sqlite.ts); the engine cannot import them.
 */

const refused = (table: string, why: string) => new FortError('FORT_ERR_RELOAD_SOURCE', `${table}: ${why}`);

/** `file` (already confined to the source dirs) opened read-only; a file that is no database is refused. */
export function openSourceDb(table: string, file: string): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('query_only = ON');
    // SQLite reads the header lazily: a file that is not a database fails here, not at the query.
    db.pragma('schema_version');
    return db;
  } catch {
    db?.close();
    throw refused(table, 'the database cannot be read');
  }
}

/**
 * `query` prepared on `db` if it is a single read-only SELECT (or WITH ... SELECT) with distinct
 * column names; refused otherwise. PRAGMA also returns rows and is a "reader", hence the keyword
 * check on top of better-sqlite3's `reader`/`readonly` flags. SQLite's compile messages quote the
 * SQL (the definition), never the data.
 */
export function prepareSelect(table: string, db: Database.Database, query: string): Database.Statement {
  let stmt: Database.Statement;
  try {
    stmt = db.prepare(query);
  } catch (err) {
    const message = (err as Error).message;
    if (/more than one statement/.test(message)) throw refused(table, 'expected exactly one SQL statement');
    if (/contains no statements/.test(message)) throw refused(table, 'expected a SELECT statement');
    throw refused(table, `the SQL does not compile: ${message}`);
  }
  const keyword = firstKeyword(query);
  if (keyword !== 'SELECT' && keyword !== 'WITH')
    throw refused(table, `expected a SELECT (or WITH ... SELECT) statement, got ${keyword || 'something else'}`);
  if (!stmt.reader || !stmt.readonly) throw refused(table, 'expected a read-only statement that returns rows');
  const names = stmt.columns().map((c) => c.name);
  // Column names are case-insensitive in DuckDB too: "ID" and "id" would collide.
  const dup = names.find((n, i) => names.findIndex((m) => m.toLowerCase() === n.toLowerCase()) !== i);
  if (dup !== undefined)
    throw refused(table, `the query returns two columns named "${dup}"; give them distinct names with AS`);
  return stmt;
}
