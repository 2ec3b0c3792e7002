import { z } from 'zod';
import { FortError } from '../../lib/errors.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { cell, run, withinBudget, type QueryLimits, type QueryTarget } from './run.js';
import { QUERY_LIMITS, selectionSchema, sortSchema, type CellValue } from './spec.js';
import {
  afterPredicate,
  field,
  ident,
  orderBy,
  Params,
  selectionsWhere,
  type OutputColumn,
  type SortKey,
} from './sql.js';

/** Rows of a table under selections, sorted, one keyset page: never an OFFSET scan. */
export const rowsSpecSchema = z.strictObject({
  selections: z.array(selectionSchema).max(QUERY_LIMITS.selections).default([]),
  /** The fields to answer with; default all, in table order. */
  fields: z.array(z.string().min(1).max(QUERY_LIMITS.maxText)).min(1).max(2000).optional(),
  sort: z.array(sortSchema).max(QUERY_LIMITS.sort).default([]),
  limit: z.number().int().min(1).max(QUERY_LIMITS.maxLimit).default(100),
  after: z.string().max(16_384).optional(),
});
export type RowsSpec = z.output<typeof rowsSpecSchema>;

/** The storage order's tiebreak: unique and stable in an immutable version. */
const ROW = '__fort_row';

export interface RowsAnswer {
  version: string;
  columns: string[];
  rows: CellValue[][];
  /** Rows under the selections, all pages. */
  total: number;
  next: string | null;
}

export async function runRows(target: QueryTarget, spec: RowsSpec, limits: QueryLimits): Promise<RowsAnswer> {
  const { schema } = target;
  if (schema.fields.has(ROW)) throw new FortError('FORT_ERR_BAD_REQUEST', `a field named ${ROW} cannot be paged`);
  const names = spec.fields ?? [...schema.fields.keys()];
  const columns: OutputColumn[] = names.map((n, i) => {
    const f = field(schema, n, `fields[${i}]`);
    return { name: f.name, role: 'dimension', type: f.type, kind: f.kind };
  });
  const sortKeys: SortKey[] = spec.sort.map((s, i) => {
    const f = field(schema, s.by, `sort[${i}].by`);
    return { column: { name: f.name, role: 'dimension', type: f.type, kind: f.kind }, dir: s.dir };
  });
  const keys = [
    ...sortKeys,
    { column: { name: ROW, role: 'dimension', type: 'BIGINT', kind: 'integer' }, dir: 'asc' } satisfies SortKey,
  ];
  const p = new Params();
  const where = selectionsWhere(spec.selections, schema, p);
  const picked = new Set([...names, ...sortKeys.map((k) => k.column.name)]);
  const inner = `SELECT ${[...picked].map(ident).join(', ')}, rowid AS ${ident(ROW)} FROM ${ident(schema.table)} WHERE ${where}`;
  const last = spec.after === undefined ? undefined : decodeCursor(spec.after, target.version, keys.length);
  const sql =
    `SELECT ${names.map(ident).join(', ')}, ${keys.map((k) => ident(k.column.name)).join(', ')} FROM (${inner}) AS page` +
    (last ? ` WHERE ${afterPredicate(keys, last, p)}` : '') +
    ` ORDER BY ${orderBy(keys)} LIMIT ${p.add(spec.limit + 1)}`;
  const raw = await run(target, sql, p, limits);
  const more = raw.length > spec.limit;
  const page = raw.slice(0, spec.limit);
  const rows = withinBudget(
    page.map((r) => columns.map((c, i) => cell(r[i], c.kind))),
    limits,
  );
  const lastRow = page.at(-1);
  // One connection runs one statement at a time: the count after the page.
  const countParams = new Params();
  const counted = await run(
    target,
    `SELECT count(*) FROM ${ident(schema.table)} WHERE ${selectionsWhere(spec.selections, schema, countParams)}`,
    countParams,
    limits,
  );
  const total = Number(counted[0]?.[0] ?? 0);
  return {
    version: target.version,
    columns: names,
    rows,
    total,
    next:
      more && lastRow
        ? encodeCursor(
            target.version,
            keys.map((k, i) => cell(lastRow[names.length + i], k.column.kind)),
          )
        : null,
  };
}
