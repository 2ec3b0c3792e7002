import type { DuckDBConnection } from '@duckdb/node-api';
import { FortError } from '../../lib/errors.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { CellValue, FieldValuesSpec, QuerySpec } from './spec.js';
import {
  afterPredicate,
  compileFieldValues,
  compileQuery,
  ident,
  orderBy,
  type OutputColumn,
  type Params,
} from './sql.js';
import type { FieldKind, TableSchema } from './table-schema.js';

/** The column that carries the answer's number of groups beside each row. */
const GROUPS = '__fort_groups';

export interface QueryLimits {
  /** A query running longer is interrupted (FORT_ERR_QUERY_TIMEOUT). */
  timeoutMs: number;
  /** Bytes of one answer's rows as JSON (FORT_ERR_QUERY_TOO_LARGE past it). */
  maxAnswerBytes: number;
  /** Groups of one query, all pages (FORT_ERR_QUERY_TOO_LARGE past it). */
  maxGroups: number;
}

/** The version a query ran on and the DuckDB connection to it. */
export interface QueryTarget {
  conn: DuckDBConnection;
  schema: TableSchema;
  /** The app version's id: answers carry it, cursors are bound to it. */
  version: string;
}

export interface QueryAnswer {
  version: string;
  columns: { name: string; role: OutputColumn['role']; type: string }[];
  rows: CellValue[][];
  /** Groups of the whole answer, all pages (1 without dimensions). */
  groups: number;
  /** `after` for the next page; null on the last one. */
  next: string | null;
}

export interface FieldValue {
  value: CellValue;
  /** Rows with this value under the other fields' selections (0: excluded). */
  count: number;
  state: 'possible' | 'excluded';
  /** In this field's own selection. */
  selected: boolean;
}

/** A JSON cell of DuckDB as the API answers it: integers and decimals as numbers when exact, dates as ISO text. */
export function cell(v: unknown, kind: FieldKind): CellValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' && kind === 'integer') {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  }
  if (typeof v === 'string' && kind === 'number') return Number(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** Runs `sql`, interrupting it past the timeout (DuckDB stops and the connection stays usable). */
export async function run(target: QueryTarget, sql: string, params: Params, limits: QueryLimits): Promise<unknown[][]> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    target.conn.interrupt();
  }, limits.timeoutMs);
  try {
    const reader = await target.conn.runAndReadAll(sql, params.values);
    return reader.getRowsJson();
  } catch (err) {
    if (timedOut)
      throw new FortError(
        'FORT_ERR_QUERY_TIMEOUT',
        `the query ran longer than ${limits.timeoutMs} ms and was stopped`,
        {
          cause: err,
        },
      );
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

export function withinBudget<T>(rows: T[], limits: QueryLimits): T[] {
  let bytes = 0;
  for (const r of rows) {
    bytes += JSON.stringify(r).length + 1;
    if (bytes > limits.maxAnswerBytes)
      throw new FortError(
        'FORT_ERR_QUERY_TOO_LARGE',
        `the answer is more than ${limits.maxAnswerBytes} bytes (ask for fewer rows or columns)`,
      );
  }
  return rows;
}

/** Selections, groups by dimensions with measures, sorted, one page (keyset: `after` is the last page's `next`). */
export async function runQuery(target: QueryTarget, spec: QuerySpec, limits: QueryLimits): Promise<QueryAnswer> {
  const q = compileQuery(spec, target.schema);
  const p = q.params;
  // The number of groups (over all pages) comes with every row: the page is cut after it.
  let sql = `SELECT * FROM (SELECT *, count(*) OVER () AS ${ident(GROUPS)} FROM (${q.inner}) AS grouped) AS answer`;
  if (q.grouped) {
    const last = spec.after === undefined ? undefined : decodeCursor(spec.after, target.version, q.keys.length);
    if (last) sql += ` WHERE ${afterPredicate(q.keys, last, p)}`;
    sql += ` ORDER BY ${orderBy(q.keys)} LIMIT ${p.add(spec.limit + 1)}`;
  }
  const raw = await run(target, sql, p, limits);
  const groups = Number(raw[0]?.at(-1) ?? 0);
  if (groups > limits.maxGroups)
    throw new FortError(
      'FORT_ERR_QUERY_TOO_LARGE',
      `the query has ${groups} groups, more than queries.max_groups (${limits.maxGroups}): select fewer rows or group by fewer fields`,
    );
  const more = raw.length > spec.limit;
  const rows = withinBudget(
    raw.slice(0, spec.limit).map((r) => q.columns.map((c, i) => cell(r[i], c.kind))),
    limits,
  );
  const index = new Map(q.columns.map((c, i) => [c.name, i]));
  const lastRow = rows.at(-1);
  return {
    version: target.version,
    columns: q.columns.map((c) => ({ name: c.name, role: c.role, type: c.type })),
    rows,
    groups,
    next:
      more && lastRow
        ? encodeCursor(
            target.version,
            q.keys.map((k) => lastRow[index.get(k.column.name)!]!),
          )
        : null,
  };
}

/**
 * A list box (Qlik's associative states): the field's values with the rows each has under the
 * other fields' selections; possible when it has any, else excluded. The field's own selection
 * excludes nothing: it only marks values selected.
 */
export async function runFieldValues(
  target: QueryTarget,
  spec: FieldValuesSpec,
  limits: QueryLimits,
): Promise<{ version: string; field: string; values: FieldValue[]; truncated: boolean }> {
  const c = compileFieldValues(spec, target.schema);
  const raw = await run(target, c.sql, c.params, limits);
  const own = spec.selections.filter((s) => s.field === spec.field);
  const selected = (v: CellValue) =>
    own.some(
      (s) => 'values' in s && s.values.some((x) => x === v || (x !== null && v !== null && String(x) === String(v))),
    );
  const values = raw.slice(0, spec.limit).map(([v, n]) => {
    const value = cell(v, c.field.kind);
    const count = Number(n);
    return {
      value,
      count,
      state: count > 0 ? ('possible' as const) : ('excluded' as const),
      selected: selected(value),
    };
  });
  return {
    version: target.version,
    field: c.field.name,
    values: withinBudget(values, limits),
    truncated: raw.length > spec.limit,
  };
}
