import { createReadStream, openSync } from 'node:fs';
import { CsvParser, CsvSyntaxError } from './csv-parser.js';
import type { ColumnSpec, ColumnType, TableSource } from './types.js';
import { BATCH_ROWS, cancelled, rowsOf, sourceError, sourceFailure } from './types.js';

/**
 * CSV (RFC 4180) streamed from disk or an HTTP body into typed rows. The parser
 * (csv-parser.ts) leaves a quote-free line where it lies in the chunk and the converters here
 * take it apart in place, numbers straight from its characters: parsing and converting a
 * 1 000 000-row, 10-column file takes ~0.6 s (csv-parse alone ~3.5 s; see csv-parser.ts).
 */

/** A field's text → the value SQLite stores, or undefined when it does not parse. '' never gets here (NULL). */
export type Converter = (text: string) => string | number | undefined;

/**
 * The same on `text[start, end)` (non-empty): a quote-free line is converted where it lies,
 * without a string per numeric field. Each has a fast path for the plain form (no regex, no
 * allocation: ten million fields per million rows) and falls back to the trimmed, general
 * check on the field's own string.
 */
type RangeConverter = (text: string, start: number, end: number) => string | number | undefined;

const isSpace = (c: number) => c === 32 || c === 9;
const hasOuterSpace = (t: string) => isSpace(t.charCodeAt(0)) || isSpace(t.charCodeAt(t.length - 1));
const field = (text: string, start: number, end: number) =>
  start === 0 && end === text.length ? text : text.slice(start, end);

function integerAt(text: string, start: number, end: number): number | undefined {
  const c0 = text.charCodeAt(start);
  let i = c0 === 45 || c0 === 43 ? start + 1 : start; // - +
  if (i < end && end - i <= 15) {
    let n = 0;
    for (; i < end; i++) {
      const digit = text.charCodeAt(i) - 48;
      if (digit < 0 || digit > 9) break;
      n = n * 10 + digit;
    }
    if (i === end) return c0 === 45 ? 0 - n : n;
  }
  const s = field(text, start, end).trim();
  if (!/^[+-]?\d+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Exact powers of ten (10^22 is the largest a double holds exactly). */
const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);

function numberAt(text: string, start: number, end: number): number | undefined {
  // Fast path, plain decimals such as 1234.56: with at most 15 digits the digits are an
  // exact integer and 10^k an exact power, so one division is the correctly rounded value,
  // the same double Number() gives (Clinger's fast path), at a fraction of the cost.
  const c0 = text.charCodeAt(start);
  let i = c0 === 45 || c0 === 43 ? start + 1 : start;
  let mantissa = 0;
  let digits = 0;
  let dot = -1;
  for (; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      mantissa = mantissa * 10 + (c - 48);
      digits += 1;
    } else if (c === 46 && dot < 0) {
      dot = i;
    } else {
      break;
    }
  }
  if (i === end && digits > 0 && digits <= 15) {
    const v = dot < 0 ? mantissa : mantissa / POW10[end - dot - 1]!;
    return c0 === 45 ? 0 - v : v;
  }
  return generalNumber(field(text, start, end));
}

function generalNumber(t: string): number | undefined {
  if (hasOuterSpace(t)) {
    const s = t.trim();
    return s === '' ? undefined : generalNumber(s);
  }
  const c0 = t.charCodeAt(0);
  // Number() also takes 0x.., 0b.., 0o.., Infinity: only decimal notation is data.
  if (!((c0 >= 48 && c0 <= 57) || c0 === 45 || c0 === 43 || c0 === 46)) return undefined;
  if (c0 === 48 && t.length > 1) {
    const c1 = t.charCodeAt(1) | 0x20;
    if (c1 === 120 || c1 === 98 || c1 === 111) return undefined;
  }
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

function booleanAt(text: string, start: number, end: number): number | undefined {
  if (end - start === 1) {
    const c = text.charCodeAt(start);
    if (c === 49) return 1;
    if (c === 48) return 0;
  }
  const s = field(text, start, end);
  switch (s) {
    case 'true':
    case 'TRUE':
    case 'True':
    case 'yes':
    case 'YES':
    case 'Yes':
      return 1;
    case 'false':
    case 'FALSE':
    case 'False':
    case 'no':
    case 'NO':
    case 'No':
      return 0;
  }
  switch (s.trim().toLowerCase()) {
    case 'true':
    case '1':
    case 'yes':
      return 1;
    case 'false':
    case '0':
    case 'no':
      return 0;
    default:
      return undefined;
  }
}

const digitAt = (t: string, i: number) => {
  const d = t.charCodeAt(i) - 48;
  return d >= 0 && d <= 9 ? d : NaN;
};

function dateAt(text: string, start: number, end: number): string | undefined {
  if (end - start !== 10) {
    const s = field(text, start, end);
    if (!hasOuterSpace(s)) return undefined;
    const t = s.trim();
    return dateAt(t, 0, t.length);
  }
  if (text.charCodeAt(start + 4) !== 45 || text.charCodeAt(start + 7) !== 45) return undefined;
  const y =
    digitAt(text, start) * 1000 +
    digitAt(text, start + 1) * 100 +
    digitAt(text, start + 2) * 10 +
    digitAt(text, start + 3);
  const m = digitAt(text, start + 5) * 10 + digitAt(text, start + 6);
  const d = digitAt(text, start + 8) * 10 + digitAt(text, start + 9);
  if (Number.isNaN(y + m + d) || m < 1 || m > 12 || d < 1) return undefined;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = m === 2 ? (leap ? 29 : 28) : m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
  return d <= days ? field(text, start, end) : undefined;
}

const RANGE_CONVERTERS: Record<ColumnType, RangeConverter> = {
  string: field,
  integer: integerAt,
  number: numberAt,
  boolean: booleanAt,
  date: dateAt,
  any: field,
};

/** Booleans are stored as 1/0 (SQLite has no boolean type); dates as ISO text. */
export const CONVERTERS: Record<Exclude<ColumnType, 'any'>, Converter> = {
  string: (t) => t,
  integer: (t) => integerAt(t, 0, t.length),
  number: (t) => numberAt(t, 0, t.length),
  boolean: (t) => booleanAt(t, 0, t.length),
  date: (t) => dateAt(t, 0, t.length),
};

export const EXPECTED: Record<ColumnType, string> = {
  string: 'a string',
  integer: 'an integer (a whole number within ±2^53)',
  number: 'a finite number',
  boolean: 'a boolean (true/false, 1/0, yes/no)',
  date: 'a date (YYYY-MM-DD)',
  any: 'a value',
};

export function converterFor(type: ColumnType): Converter {
  return type === 'any' ? CONVERTERS.string : CONVERTERS[type];
}

/** Never the value: these messages end up in status events sent to the cloud. */
export function badValue(table: string, row: number, column: ColumnSpec): Error {
  return sourceError(table, `row ${row}, column "${column.name}": expected ${EXPECTED[column.type]}`);
}

export interface CsvOptions {
  table: string;
  columns: ColumnSpec[];
  delimiter: string;
  quote: string;
}

/** Where a record is, for messages: the header or the 1-based data row. */
const recordName = (record: number) => (record <= 1 ? 'the header row' : `row ${record - 1}`);

/**
 * Typed rows from CSV text chunks, in batches of up to BATCH_ROWS: the first record must be
 * the header, naming exactly the declared columns in order; an empty field is NULL. Checks
 * `signal` between chunks (the only moments an abort can have happened: parsing a chunk is
 * synchronous).
 */
export async function* csvBatches(
  chunks: AsyncIterable<string>,
  opts: CsvOptions,
  signal: AbortSignal,
): AsyncGenerator<unknown[][]> {
  const { table, columns, delimiter } = opts;
  const n = columns.length;
  const d = delimiter.charCodeAt(0);
  const convert = columns.map((c) => RANGE_CONVERTERS[c.type]);
  const parser = new CsvParser(delimiter, opts.quote);
  let header = true;
  let row = 0;
  let batch: unknown[][] = [];
  const check = (rec: string[]): void => {
    if (rec.length === n && rec.every((name, i) => name === columns[i]!.name)) return;
    // The "header" may be a data row of a file without one: say which column differs, never what it holds.
    const i = rec.findIndex((name, k) => name !== columns[k]?.name);
    throw sourceError(
      table,
      rec.length !== n
        ? `the header row has ${rec.length} columns, the definition declares ${n} (${columns.map((c) => c.name).join(', ')})`
        : `the header row does not match the declared columns: column ${i + 1} should be "${columns[i]!.name}"`,
    );
  };
  const wrongWidth = (fields: number) => sourceError(table, `row ${row} has ${fields} fields, expected ${n}`);
  const convertField = (c: number, text: string, start: number, end: number): unknown => {
    if (start === end) return null; // an empty field is NULL
    const v = convert[c]!(text, start, end);
    if (v === undefined) throw badValue(table, row, columns[c]!);
    return v;
  };
  /** A quote-free line, field by field where it lies in the parser's buffer. */
  const fromLine = (text: string, start: number, end: number): unknown[] => {
    const out = new Array<unknown>(n);
    let p = start;
    for (let c = 0; c < n; c++) {
      let e = p;
      while (e < end && text.charCodeAt(e) !== d) e++;
      if (e === end && c < n - 1) throw wrongWidth(c + 1);
      out[c] = convertField(c, text, p, e);
      p = e + 1;
    }
    if (p <= end) throw wrongWidth(text.slice(start, end).split(delimiter).length);
    return out;
  };
  const fromRecord = (rec: string[]): unknown[] => {
    if (rec.length !== n) throw wrongWidth(rec.length);
    const out = rec as unknown[]; // converted in place: the array is ours and becomes the row
    for (let c = 0; c < n; c++) out[c] = convertField(c, rec[c]!, 0, rec[c]!.length);
    return out;
  };
  const iterator = chunks[Symbol.asyncIterator]();
  try {
    for (;;) {
      if (signal.aborted) throw cancelled(table);
      const next = await iterator.next();
      if (signal.aborted) throw cancelled(table);
      if (next.done) parser.finish();
      else parser.feed(next.value);
      for (let rec = parser.nextLine(); rec !== undefined; rec = parser.nextLine()) {
        if (header) {
          check(rec === true ? parser.buffer.slice(parser.lineStart, parser.lineEnd).split(delimiter) : rec);
          header = false;
          continue;
        }
        row += 1;
        batch.push(rec === true ? fromLine(parser.buffer, parser.lineStart, parser.lineEnd) : fromRecord(rec));
        if (batch.length === BATCH_ROWS) {
          yield batch;
          batch = [];
        }
      }
      if (next.done) break;
    }
    if (batch.length) yield batch;
    if (header) throw sourceError(table, 'the file is empty: a header row naming the columns is required');
  } catch (err) {
    if (err instanceof CsvSyntaxError)
      throw sourceError(table, `malformed CSV at ${recordName(err.record)}: ${err.message}`);
    throw sourceFailure(table, err, signal);
  } finally {
    // Stopped early (an error, the consumer gave up): close the file or the response.
    await iterator.return?.().catch(() => undefined);
  }
}

/**
 * The text of a file in 64 KiB chunks (bigger ones were no faster and cost RSS). A generator,
 * so the file is opened only when read, and an abort destroys the stream mid-read; passing
 * `signal` to createReadStream instead would throw, unhandled, for a signal already aborted
 * before anyone listens.
 */
async function* fileChunks(file: string, open: OpenFile, signal: AbortSignal): AsyncGenerator<string> {
  const stream = createReadStream(file, { fd: open(file), encoding: 'utf8', highWaterMark: 64 * 1024 });
  const onAbort = () => stream.destroy(Object.assign(new Error('aborted'), { name: 'AbortError' }));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of stream) yield chunk as string;
  } finally {
    signal.removeEventListener('abort', onAbort);
    stream.destroy();
  }
}

/** Opens a file for reading: a descriptor (the caller checks what it is; see lib/confined-file.ts). */
export type OpenFile = (file: string) => number;

/** A CSV file already confined to the data dirs (`file` is its real path), read through `open`. */
export function csvFileSource(file: string, opts: CsvOptions, open: OpenFile = (f) => openSync(f, 'r')): TableSource {
  const batches = (signal: AbortSignal) => csvBatches(fileChunks(file, open, signal), opts, signal);
  return { table: opts.table, columns: opts.columns, batches, rows: (signal) => rowsOf(batches(signal)) };
}
