import { FortError } from '../../lib/errors.js';
import { appendRows, refusal } from './append.js';
import { DUCKDB_TYPES } from './csv-table.js';
import type { TableWriter } from './version-file.js';

/** A table whose rows the agent streams in the load request (a source only the agent can reach, e.g. HTTP). */
export interface RowsTableSource {
  name: string;
  columns: { name: string; type: keyof typeof DUCKDB_TYPES }[];
}

/**
 * The lines of a streamed load after its first: one JSON array per row, then
 * `{"end": <table>, "rows": <count>}`, for each streamed table in the order the request lists them.
 */
export type StreamedLines = AsyncIterator<string>;

/** The agent's stream is checked as strictly as a file: a cut or garbled stream fails the load. */
const streamProblem = (table: string, why: string) => refusal(table, `the streamed rows ${why}`);

/** The rows of one streamed table, up to and including its end line (whose count must match). */
async function* streamedRows(t: RowsTableSource, lines: StreamedLines): AsyncGenerator<unknown[]> {
  const n = t.columns.length;
  let count = 0;
  for (;;) {
    let next: IteratorResult<string>;
    try {
      next = await lines.next();
    } catch (err) {
      // split2's own refusal of a runaway line; anything else is the request breaking off.
      if (/maximum buffer/i.test((err as Error).message))
        throw streamProblem(t.name, `hold a line longer than the engine reads after row ${count}`);
      throw new FortError('FORT_ERR_RELOAD_CANCELLED', `${t.name}: the request ended after row ${count}`);
    }
    if (next.done) throw streamProblem(t.name, `ended after row ${count}, before the table's end line`);
    let v: unknown;
    try {
      v = JSON.parse(next.value);
    } catch {
      throw streamProblem(t.name, `hold a line that is not JSON after row ${count}`);
    }
    if (Array.isArray(v)) {
      count++;
      if (v.length !== n) throw refusal(t.name, `row ${count}: expected ${n} values, found ${v.length}`);
      yield v;
      continue;
    }
    const end = v as { end?: unknown; rows?: unknown } | null;
    if (end?.end !== t.name || end.rows !== count)
      throw streamProblem(t.name, `end with a line that does not close this table's ${count} rows`);
    return;
  }
}

/**
 * Rows the agent sent in the request, appended like a SQLite source's (types checked per value,
 * a turn of the event loop every thousand rows). Past `stopAfter` rows the table is refused as
 * too large and the rest of the stream is not read.
 */
export function rowsTable(t: RowsTableSource, lines: StreamedLines): TableWriter {
  return {
    name: t.name,
    write: (conn, { stopAfter, signal }) =>
      appendRows(conn, {
        table: t.name,
        columns: t.columns.map((c) => ({ name: c.name, type: DUCKDB_TYPES[c.type] })),
        rows: streamedRows(t, lines),
        stopAfter,
        signal,
        // The request closed mid-stream (the agent gave up), or DuckDB failed: the message may quote data.
        failure: () =>
          signal.aborted
            ? new FortError('FORT_ERR_RELOAD_CANCELLED', `${t.name}: the load was cancelled`)
            : new FortError('FORT_ERR_RELOAD_SOURCE', `${t.name}: the streamed rows could not be appended`),
      }),
  };
}
