import { existsSync, mkdirSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { ConfinedFileRefused, openConfined, type ConfinedFile } from '../lib/confined-file.js';
import { FortError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { csvTable, DUCKDB_TYPES } from './load/csv-table.js';
import { sqliteTable } from './load/sqlite-table.js';
import { rowsTable, type StreamedLines } from './load/rows-table.js';
import { loadCancelled, writeVersion, type TableWriter, type VersionLimits } from './load/version-file.js';
import type { VersionStore } from './versions.js';

const column = z.strictObject({
  name: z.string().min(1).max(128),
  type: z.enum(Object.keys(DUCKDB_TYPES) as [keyof typeof DUCKDB_TYPES]),
});
const tableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/);

const csvSource = z.strictObject({
  name: tableName,
  connector: z.literal('csv'),
  file: z.string().min(1).max(4096),
  delimiter: z.string().length(1).default(','),
  quote: z.string().length(1).default('"'),
  header: z.boolean().default(true),
  columns: z.array(column).min(1).max(2000),
});

/** Column names and types come from the query's result (SQLite's declared types). */
const sqliteSource = z.strictObject({
  name: tableName,
  connector: z.literal('sqlite'),
  database: z.string().min(1).max(4096).refine(isAbsolute, 'expected an absolute path'),
  query: z.string().min(1).max(100_000),
});

/** Rows the agent streams after the request line (a streamed load, see rows-table.ts). */
const rowsSource = z.strictObject({
  name: tableName,
  connector: z.literal('rows'),
  columns: z.array(column).min(1).max(2000),
});

/** What the agent asks the engine to load: a new version of an app from its sources (CSV, SQLite, streamed rows). */
export const loadRequestSchema = z.strictObject({
  version: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/),
  tables: z
    .array(z.discriminatedUnion('connector', [csvSource, sqliteSource, rowsSource]))
    .min(1)
    .max(64)
    // DuckDB's names are case-insensitive: "Sales" and "sales" would be one table.
    .refine((ts) => new Set(ts.map((t) => t.name.toLowerCase())).size === ts.length, 'table names must differ'),
});
export type LoadRequest = z.output<typeof loadRequestSchema>;

/** What the engine says of a source file `openConfined` refused. */
const WHY: Record<ConfinedFileRefused['reason'], string> = {
  unreadable: 'the file cannot be read',
  outside: "not inside the engine's data.source_dirs",
  // Not a FIFO or a device: reading one could block a load forever.
  not_regular: 'not a regular file',
};

/**
 * `file` opened and checked from its descriptor (lib/confined-file.ts): a regular file inside
 * one of `dirs`, links followed, or a refusal naming it. `again`: the check the load makes as it
 * reads, after the one it made when asked; a refusal then means the file changed in between.
 */
function openChecked(file: string, dirs: readonly string[], again = false): ConfinedFile {
  try {
    return openConfined(file, dirs);
  } catch (err) {
    if (!(err instanceof ConfinedFileRefused)) throw err;
    throw new FortError(
      'FORT_ERR_RELOAD_SOURCE',
      `${file}: ${WHY[err.reason]}${again ? ' (changed since it was checked)' : ''}`,
    );
  }
}

/** The real path of `file`, checked as the load will check it again when it reads it. */
function confined(file: string, dirs: readonly string[]): string {
  const checked = openChecked(file, dirs);
  checked.close();
  return checked.realPath;
}

function tableWriter(t: LoadRequest['tables'][number], dirs: readonly string[], lines?: StreamedLines): TableWriter {
  switch (t.connector) {
    case 'csv': {
      const file = confined(t.file, dirs);
      return csvTable({ ...t, file }, () => openChecked(file, dirs, true));
    }
    case 'sqlite': {
      const database = confined(t.database, dirs);
      return sqliteTable({ ...t, database }, () => openChecked(database, dirs, true));
    }
    case 'rows':
      if (!lines)
        throw new FortError('FORT_ERR_BAD_REQUEST', `${t.name}: rows tables come in a streamed (x-ndjson) load`);
      return rowsTable(t, lines);
  }
}

/**
 * Loads run one at a time (each may use the whole memory_limit), each into a new immutable
 * version. Aborting a load's `signal` (its request was closed) stops it where it is, or skips it
 * if it is still waiting; the loads behind it run as usual.
 */
export function createVersionLoader(o: {
  versions: VersionStore;
  sourceDirs: readonly string[];
  limits: VersionLimits;
  log: Logger;
}) {
  let chain: Promise<unknown> = Promise.resolve();
  /** Loads asked for and not yet done (the running one included). */
  let pending = 0;
  return {
    /** `lines`: the rows of the request's `rows` tables, when it was streamed. */
    load(app: string, req: LoadRequest, signal: AbortSignal = new AbortController().signal, lines?: StreamedLines) {
      if (pending > 0) o.log.info({ app, version: req.version, ahead: pending }, 'load queued');
      pending++;
      const run = async () => {
        const log = o.log.child({ app, version: req.version });
        const started = Date.now();
        try {
          if (signal.aborted) throw loadCancelled(req.version);
          // Versions are immutable: an id is written once.
          if (existsSync(o.versions.file(app, req.version)))
            throw new FortError('FORT_ERR_CONFLICT', `version ${req.version} of app ${app} exists already`);
          const tables = req.tables.map((t) => tableWriter(t, o.sourceDirs, lines));
          const dir = o.versions.appDir(app);
          mkdirSync(dir, { recursive: true, mode: 0o700 });
          log.info({ tables: tables.length }, 'load started');
          const v = await writeVersion({ dir, id: req.version, tables, limits: o.limits, signal });
          log.info({ tables: v.tables, ms: Date.now() - started }, 'app version loaded');
          return { app, version: req.version, tables: v.tables };
        } catch (err) {
          if (err instanceof FortError && err.code === 'FORT_ERR_RELOAD_CANCELLED')
            log.info({ ms: Date.now() - started }, 'load cancelled');
          throw err;
        }
      };
      const result = chain.then(run, run).finally(() => pending--);
      chain = result.catch(() => undefined);
      return result;
    },
  };
}
export type VersionLoader = ReturnType<typeof createVersionLoader>;
