import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, createReadStream, fsyncSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { FortError } from '../../lib/errors.js';
import { isDiskFull } from '../../lib/disk-full.js';
import type { Logger } from '../../lib/logger.js';
import type { ColumnSpec, ColumnType, TableSource } from './connectors/types.js';
import { quoteIdent } from './version-reader.js';

/** Temp version files end so; crash recovery removes every `.*.sqlite.tmp` in an app's directory. */
export const TMP_SUFFIX = '.sqlite.tmp';

/** A temp version file (of a reload or of seedApp) left by a crash: never a live version. */
export function isTempVersionFile(name: string): boolean {
  const base = basename(name);
  return base.startsWith('.') && base.endsWith(TMP_SUFFIX);
}

export interface WrittenVersion {
  /** Complete and fsynced; the caller renames it into place (and fsyncs the directory). */
  tmpFile: string;
  tables: { name: string; rows: number }[];
  rowCount: number;
  /** SHA-256 of the file, hex. */
  contentHash: string;
}

export interface WriteVersionOptions {
  /** The app's directory, created 0700 if missing. */
  dir: string;
  sources: TableSource[];
  /** All tables together (`reloads.max_rows`). */
  maxRows: number;
  signal: AbortSignal;
  log: Logger;
}

/** Rows per transaction: big enough that commits cost nothing, small enough to yield to the event loop often. */
const ROWS_PER_TRANSACTION = 10_000;
/** Rows per INSERT: one native call binds many rows (~2x faster than one call per row). */
const MAX_ROWS_PER_INSERT = 32;
const MAX_PARAMS_PER_INSERT = 1000;

/** Affinity per declared type; `any` gets none, so SQLite keeps each value as it came. */
const AFFINITY: Record<ColumnType, string> = {
  string: ' TEXT',
  integer: ' INTEGER',
  number: ' REAL',
  boolean: ' INTEGER',
  date: ' TEXT',
  any: '',
};

const loadCancelled = () => new FortError('FORT_ERR_RELOAD_CANCELLED', 'reload cancelled', { fatal: false });
const tooLarge = (message: string, cause?: unknown) => new FortError('FORT_ERR_RELOAD_TOO_LARGE', message, { cause });

function createTable(db: Database.Database, source: TableSource): void {
  const cols = source.columns;
  if (cols.length === 0)
    throw new FortError('FORT_ERR_RELOAD_SOURCE', `table "${source.table}": the source has no columns`);
  const seen = new Set<string>();
  for (const c of cols) {
    const key = c.name.toLowerCase();
    if (seen.has(key))
      throw new FortError('FORT_ERR_RELOAD_SOURCE', `table "${source.table}": two columns are named "${c.name}"`);
    seen.add(key);
  }
  db.exec(
    `CREATE TABLE ${quoteIdent(source.table)} (${cols.map((c: ColumnSpec) => `${quoteIdent(c.name)}${AFFINITY[c.type]}`).join(', ')})`,
  );
}

function insertStatement(
  db: Database.Database,
  table: string,
  columns: number,
  rows: number,
): Database.Statement<unknown[]> {
  const one = `(${new Array<string>(columns).fill('?').join(', ')})`;
  return db.prepare(`INSERT INTO ${quoteIdent(table)} VALUES ${new Array<string>(rows).fill(one).join(', ')}`);
}

/**
 * Stream every source into a new SQLite file `<dir>/.reload-<random>.sqlite.tmp` (0600): one
 * table per source, rows inserted in transactions of ROWS_PER_TRANSACTION. No journal and no
 * syncs while loading: until it is renamed into place nobody reads the file, and a crash
 * leaves only a temp file to delete; the finished file is fsynced once. On any failure or
 * abort the temp file is removed before the error propagates.
 */
export async function writeAppVersion(opts: WriteVersionOptions): Promise<WrittenVersion> {
  const { dir, sources, maxRows, signal, log } = opts;
  const started = performance.now();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmpFile = join(dir, `.reload-${randomBytes(8).toString('hex')}${TMP_SUFFIX}`);
  let db: Database.Database | undefined;
  try {
    // Created here with its mode, O_EXCL: SQLite would create it with the umask's.
    closeSync(openSync(tmpFile, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600));
    db = new Database(tmpFile);
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('locking_mode = EXCLUSIVE');
    const tables: WrittenVersion['tables'] = [];
    let rowCount = 0;
    for (const source of sources) {
      if (signal.aborted) throw loadCancelled();
      const rows = await loadTable(db, source, signal, () => {
        rowCount += 1;
        if (rowCount > maxRows)
          throw tooLarge(
            `the app version would have more than ${maxRows} rows (reloads.max_rows); stopped in table "${source.table}"`,
          );
      });
      tables.push({ name: source.table, rows });
    }
    db.close();
    db = undefined;
    if (signal.aborted) throw loadCancelled();
    const fd = openSync(tmpFile, constants.O_RDONLY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const contentHash = await sha256File(tmpFile, signal);
    log.info({ tables, rowCount, ms: Math.round(performance.now() - started) }, 'app version written');
    return { tmpFile, tables, rowCount, contentHash };
  } catch (err) {
    try {
      db?.close();
    } catch {
      // Closing a broken database must not hide why it broke.
    }
    rmSync(tmpFile, { force: true });
    // A full disk is "too large" for the reload, not a bug.
    if (isDiskFull(err)) throw tooLarge('disk full while writing the app version', err);
    if (err instanceof FortError) throw err;
    if (signal.aborted || (err as Error | undefined)?.name === 'AbortError') throw loadCancelled();
    throw err;
  }
}

/** One source into its table; returns its row count. `counted` is called per row (and enforces max_rows). */
async function loadTable(
  db: Database.Database,
  source: TableSource,
  signal: AbortSignal,
  counted: () => void,
): Promise<number> {
  createTable(db, source);
  const width = source.columns.length;
  const perInsert = Math.max(1, Math.min(MAX_ROWS_PER_INSERT, Math.floor(MAX_PARAMS_PER_INSERT / width)));
  const insertMany = insertStatement(db, source.table, width, perInsert);
  const insertOne = perInsert === 1 ? insertMany : insertStatement(db, source.table, width, 1);
  // Parameters of the next multi-row INSERT, reused: no array per row or per batch.
  const params = new Array<unknown>(width * perInsert);
  let filled = 0;
  let rows = 0;
  let inTransaction = 0;
  const add = (row: unknown[]) => {
    if (row.length !== width)
      throw new FortError(
        'FORT_ERR_RELOAD_SOURCE',
        `table "${source.table}": row ${rows + 1} has ${row.length} values for ${width} columns`,
      );
    counted();
    rows += 1;
    inTransaction += 1;
    for (let c = 0; c < width; c++) params[filled++] = row[c];
    if (filled === params.length) {
      insertMany.run(params);
      filled = 0;
    }
  };
  const commitIfDue = async () => {
    if (inTransaction < ROWS_PER_TRANSACTION) return;
    db.exec('COMMIT');
    inTransaction = 0;
    // A turn of the event loop per transaction, whatever the source: the agent keeps serving.
    await nextTurn();
    if (signal.aborted) throw loadCancelled();
    db.exec('BEGIN');
  };
  db.exec('BEGIN');
  if (source.batches) {
    for await (const batch of source.batches(signal)) {
      for (const row of batch) add(row);
      await commitIfDue();
    }
  } else {
    for await (const row of source.rows(signal)) {
      add(row);
      await commitIfDue();
    }
  }
  for (let off = 0; off < filled; off += width) insertOne.run(params.slice(off, off + width));
  db.exec('COMMIT');
  return rows;
}

/** Streamed: a version file may be gigabytes. */
async function sha256File(file: string, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024, signal }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}
