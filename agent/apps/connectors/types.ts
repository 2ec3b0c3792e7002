import { FortError } from '../../../lib/errors.js';

/** Declared column types of csv/http sources; `any` = a sqlite result, values kept as SQLite gives them. */
export type ColumnType = 'string' | 'integer' | 'number' | 'boolean' | 'date' | 'any';

export interface ColumnSpec {
  name: string;
  type: ColumnType;
}

/**
 * One table of an app version, read from its source as a stream of rows. Every value is
 * already what SQLite binds (string, number, bigint, Buffer or null), in `columns` order.
 * Errors are FortErrors: FORT_ERR_RELOAD_SOURCE naming the table, row and column, never a
 * value (these messages travel to the cloud in status events); FORT_ERR_RELOAD_CANCELLED
 * when `signal` aborts.
 */
export interface TableSource {
  table: string;
  columns: ColumnSpec[];
  rows(signal: AbortSignal): AsyncIterable<unknown[]>;
  /**
   * The same rows in small batches, when the source has them: the version writer's fast
   * path. An async step per row costs ~0.4 s per million rows, a quarter of a CSV load.
   */
  batches?(signal: AbortSignal): AsyncIterable<unknown[][]>;
}

/**
 * Rows per batch. Small on purpose: a batch is alive until written, and under the agent's
 * 1 MB young generation bigger ones survive into the old generation (measured: 64 rows
 * ~1.15 s per million, 1024 rows ~1.35 s).
 */
export const BATCH_ROWS = 64;

/** One row at a time from batches. */
export async function* rowsOf(batches: AsyncIterable<unknown[][]>): AsyncGenerator<unknown[]> {
  for await (const batch of batches) for (const row of batch) yield row;
}

export function cancelled(table: string): FortError {
  return new FortError('FORT_ERR_RELOAD_CANCELLED', `table "${table}": reload cancelled`, { fatal: false });
}

export function sourceError(table: string, what: string, cause?: unknown): FortError {
  return new FortError('FORT_ERR_RELOAD_SOURCE', `table "${table}": ${what}`, { cause });
}

/**
 * What an error thrown while reading a source means for the reload: FortErrors as they are,
 * an abort as a cancellation, anything else (an I/O error) as a source error that names the
 * errno code only: a library's message may quote the data it choked on.
 */
export function sourceFailure(table: string, err: unknown, signal: AbortSignal): FortError {
  if (err instanceof FortError) return err;
  if (signal.aborted || (err as Error | undefined)?.name === 'AbortError') return cancelled(table);
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return sourceError(table, `cannot read the source${code ? ` (${code})` : ''}`, err);
}
