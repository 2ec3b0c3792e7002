import Database from 'better-sqlite3';
import { FortError, StoreError } from '../../lib/errors.js';
import { NotFoundError } from './errors.js';
import { createLru } from '../../lib/lru.js';
import { limitPageCache, PAGE_CACHE_KIB } from '../store/page-cache.js';

/** A user table of an app version, with its row count. */
export interface TableInfo {
  name: string;
  rowCount: number;
}

/** One page of a table: `rows` are arrays in `columns` order; `total` counts the whole table. */
export interface RowPage {
  columns: string[];
  rows: unknown[][];
  total: number;
}

export interface VersionReader {
  /** The user tables of a version file, sorted by name. */
  tables(file: string): TableInfo[];
  /**
   * Rows `offset .. offset+limit` of `table` in storage (rowid) order; `table` must be one of
   * `tables(file)`. BLOBs come as base64 text. Rows are read one at a time, and past `maxBytes`
   * of JSON the page is refused (FORT_ERR_QUERY_TOO_LARGE) before more are read: cells may be
   * megabytes each.
   */
  rows(file: string, table: string, offset: number, limit: number, maxBytes?: number): RowPage;
  /** Database handles open right now (at most `maxOpen`). */
  openCount(): number;
  close(): void;
}

export interface VersionReaderOptions {
  /** Version files kept open at once; the least recently used one is closed beyond this. */
  maxOpen?: number;
}

interface TableEntry extends TableInfo {
  /** WITHOUT ROWID tables are read in primary-key order instead. */
  withoutRowid: boolean;
}

interface PageQuery {
  stmt: Database.Statement<[number, number], unknown[]>;
  columns: string[];
}

interface Handle {
  db: Database.Database;
  pages: Map<string, PageQuery>;
}

/** Read-only, with a bounded page cache; closed again when the cache pragma fails (it reads the header). */
function openVersionFile(file: string): Database.Database {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    limitPageCache(db, PAGE_CACHE_KIB.appVersion);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Reads app version files: each is its own SQLite database, renamed into place complete and
 * never written again, so a handle, its prepared statements and its table list stay valid for
 * as long as the file exists. Table names come from the file itself and are only ever used
 * quoted, after an exact match against that list: a client's string never reaches SQL text.
 */
export function createVersionReader(opts: VersionReaderOptions = {}): VersionReader {
  const maxOpen = opts.maxOpen ?? 16;
  const handles = createLru<string, Handle>(maxOpen, (_file, h) => h.db.close());
  // Immutable files: the table list and counts are computed once per file. A few entries per
  // open handle, so reopening an evicted file does not count every table again.
  const tableLists = createLru<string, TableEntry[]>(Math.max(64, maxOpen * 8));

  const open = (file: string): Handle => {
    const cached = handles.get(file);
    if (cached) return cached;
    let db: Database.Database;
    try {
      db = openVersionFile(file);
    } catch (err) {
      throw new StoreError(`cannot open app version file ${file}: ${(err as Error).message}`, 'FORT_ERR_STORE', err);
    }
    const h: Handle = { db, pages: new Map() };
    handles.set(file, h);
    return h;
  };

  const tableList = (file: string): TableEntry[] => {
    const cached = tableLists.get(file);
    if (cached) return cached;
    const { db } = open(file);
    let list: TableEntry[];
    try {
      list = (db.pragma('table_list') as { schema: string; name: string; type: string; wr: number }[])
        .filter((t) => t.schema === 'main' && t.type === 'table' && !t.name.startsWith('sqlite_'))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        .map((t) => ({
          name: t.name,
          rowCount: db
            .prepare(`SELECT COUNT(*) FROM ${quoteIdent(t.name)}`)
            .pluck()
            .get() as number,
          withoutRowid: t.wr === 1,
        }));
    } catch (err) {
      handles.delete(file); // not a database (or a damaged one): do not keep it open
      throw new StoreError(`cannot read app version file ${file}: ${(err as Error).message}`, 'FORT_ERR_STORE', err);
    }
    tableLists.set(file, list);
    return list;
  };

  const pageQuery = (h: Handle, table: TableEntry): PageQuery => {
    const cached = h.pages.get(table.name);
    if (cached) return cached;
    const order = orderBy(h.db, table);
    const stmt = h.db
      .prepare<[number, number], unknown[]>(
        `SELECT * FROM ${quoteIdent(table.name)}${order ? ` ORDER BY ${order}` : ''} LIMIT ? OFFSET ?`,
      )
      .raw();
    const query = { stmt, columns: stmt.columns().map((c) => c.name) };
    h.pages.set(table.name, query);
    return query;
  };

  return {
    tables: (file) => tableList(file).map(({ name, rowCount }) => ({ name, rowCount })),
    rows(file, table, offset, limit, maxBytes = Infinity) {
      if (!Number.isSafeInteger(offset) || offset < 0)
        throw new RangeError(`offset must be a non-negative integer, got ${offset}`);
      if (!Number.isSafeInteger(limit) || limit < 0)
        throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
      const entry = tableList(file).find((t) => t.name === table);
      if (!entry)
        throw new NotFoundError(
          `no table ${JSON.stringify(table.length > 128 ? `${table.slice(0, 128)}...` : table)} in this app version`,
        );
      const { stmt, columns } = pageQuery(open(file), entry);
      const rows: unknown[][] = [];
      let bytes = 0;
      for (const row of stmt.iterate(limit, offset)) {
        // JSON.stringify would write a Buffer as an array of numbers: four times its size, unusable.
        for (let i = 0; i < row.length; i++)
          if (Buffer.isBuffer(row[i])) row[i] = (row[i] as Buffer).toString('base64');
        bytes += JSON.stringify(row).length + 1;
        if (bytes > maxBytes)
          throw new FortError(
            'FORT_ERR_QUERY_TOO_LARGE',
            `this page of ${table} is over ${maxBytes} bytes (api.max_answer_mib) by row ${offset + rows.length + 1}; ask for fewer rows`,
          );
        rows.push(row);
      }
      return { columns: [...columns], rows, total: entry.rowCount };
    },
    openCount: () => handles.size,
    close() {
      handles.clear();
      tableLists.clear();
    },
  };
}

/** An SQL identifier in double quotes, embedded quotes doubled (the only escape SQLite has there). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * rowid order (the order rows were written in), through whichever rowid alias no column
 * shadows; WITHOUT ROWID tables by primary key.
 */
function orderBy(db: Database.Database, table: TableEntry): string | undefined {
  const cols = db.pragma(`table_info(${quoteIdent(table.name)})`) as { name: string; pk: number }[];
  if (table.withoutRowid) {
    return cols
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => quoteIdent(c.name))
      .join(', ');
  }
  const names = new Set(cols.map((c) => c.name.toLowerCase()));
  return ['rowid', '_rowid_', 'oid'].find((alias) => !names.has(alias));
}
