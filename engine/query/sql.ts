import { FortError } from '../../lib/errors.js';
import type { CellValue, FieldValuesSpec, Measure, QuerySpec, Selection } from './spec.js';
import { castType, type SchemaField, type TableSchema } from './table-schema.js';

/**
 * Query specs → parameterised DuckDB SQL. Every name a user sends is looked up in the version's
 * schema and written only as a quoted identifier; every value is a parameter. Nothing of the
 * spec reaches the SQL text otherwise.
 */

/** A quoted SQL identifier. */
export const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

const bad = (message: string) => new FortError('FORT_ERR_BAD_REQUEST', message);

/** Positional parameters ($1, $2, …) in the order they are added. */
export class Params {
  readonly values: CellValue[] = [];
  add(v: CellValue): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
  /** A value compared with `f`: cast to its type, so that a date or a decimal compares as one. */
  typed(v: CellValue, f: Pick<SchemaField, 'name' | 'type' | 'kind'>): string {
    return `CAST(${this.add(v)} AS ${castType(f)})`;
  }
}

export function field(schema: TableSchema, name: string, where: string): SchemaField {
  const f = schema.fields.get(name);
  if (!f)
    throw bad(
      `${where}: no field ${JSON.stringify(name)} in this app (fields: ${[...schema.fields.keys()].join(', ')})`,
    );
  return f;
}

const ORDERED = new Set(['integer', 'number', 'date', 'timestamp']);

function selectionPredicate(s: Selection, schema: TableSchema, p: Params, where: string): string {
  const f = field(schema, s.field, where);
  const col = ident(f.name);
  if ('values' in s) {
    const parts: string[] = [];
    const values = s.values.filter((v) => v !== null);
    if (values.length > 0) parts.push(`${col} IN (${values.map((v) => p.typed(v, f)).join(', ')})`);
    if (values.length < s.values.length) parts.push(`${col} IS NULL`);
    return `(${parts.join(' OR ')})`;
  }
  if ('range' in s) {
    if (!ORDERED.has(f.kind))
      throw bad(`${where}: a range needs a number or date field; ${JSON.stringify(f.name)} is ${f.type}`);
    const parts: string[] = [];
    if (s.range.min !== undefined) parts.push(`${col} >= ${p.typed(s.range.min, f)}`);
    if (s.range.max !== undefined) parts.push(`${col} <= ${p.typed(s.range.max, f)}`);
    return `(${parts.join(' AND ')})`;
  }
  return `contains(lower(CAST(${col} AS VARCHAR)), lower(${p.add(s.contains)}))`;
}

/** The selections ANDed (`TRUE` for none), but those on `except` (a list box's own field). */
export function selectionsWhere(selections: Selection[], schema: TableSchema, p: Params, except?: string): string {
  const parts = selections.flatMap((s, i) =>
    s.field === except ? [] : [selectionPredicate(s, schema, p, `selections[${i}]`)],
  );
  return parts.length === 0 ? 'TRUE' : parts.join(' AND ');
}

export interface OutputColumn {
  name: string;
  role: 'dimension' | 'measure';
  /** DuckDB type of the answer column (cursor values are cast back to it). */
  type: string;
  kind: SchemaField['kind'];
}

function measureColumn(m: Measure, schema: TableSchema, where: string): { expr: string; column: OutputColumn } {
  const name = m.as ?? (m.field === undefined ? 'count' : `${m.op}_${m.field}`);
  if (m.field === undefined)
    return { expr: 'count(*)', column: { name, role: 'measure', type: 'BIGINT', kind: 'integer' } };
  const f = field(schema, m.field, `${where}.field`);
  const col = ident(f.name);
  const numeric = f.kind === 'integer' || f.kind === 'number';
  if ((m.op === 'sum' || m.op === 'avg') && !numeric)
    throw bad(`${where}: ${m.op} needs a number field; ${JSON.stringify(f.name)} is ${f.type}`);
  switch (m.op) {
    case 'count':
      return { expr: `count(${col})`, column: { name, role: 'measure', type: 'BIGINT', kind: 'integer' } };
    case 'count_distinct':
      return { expr: `count(DISTINCT ${col})`, column: { name, role: 'measure', type: 'BIGINT', kind: 'integer' } };
    case 'avg':
      return { expr: `avg(${col})`, column: { name, role: 'measure', type: 'DOUBLE', kind: 'number' } };
    case 'sum':
      return f.kind === 'integer'
        ? { expr: `CAST(sum(${col}) AS HUGEINT)`, column: { name, role: 'measure', type: 'HUGEINT', kind: 'integer' } }
        : { expr: `CAST(sum(${col}) AS DOUBLE)`, column: { name, role: 'measure', type: 'DOUBLE', kind: 'number' } };
    case 'min':
    case 'max':
      return { expr: `${m.op}(${col})`, column: { name, role: 'measure', type: f.type, kind: f.kind } };
  }
}

export interface SortKey {
  column: OutputColumn;
  dir: 'asc' | 'desc';
}

export interface CompiledQuery {
  /** The grouped (or single-row) answer, before paging. */
  inner: string;
  params: Params;
  columns: OutputColumn[];
  /** The order of the answer: the spec's sort, then every dimension (a group's unique key). */
  keys: SortKey[];
  /** Grouped by dimensions: paged; without, one row. */
  grouped: boolean;
}

export function compileQuery(spec: QuerySpec, schema: TableSchema): CompiledQuery {
  const p = new Params();
  const columns: OutputColumn[] = [];
  const select: string[] = [];
  spec.dimensions.forEach((d, i) => {
    const f = field(schema, d, `dimensions[${i}]`);
    select.push(`${ident(f.name)} AS ${ident(f.name)}`);
    columns.push({ name: f.name, role: 'dimension', type: f.type, kind: f.kind });
  });
  spec.measures.forEach((m, i) => {
    const { expr, column } = measureColumn(m, schema, `measures[${i}]`);
    select.push(`${expr} AS ${ident(column.name)}`);
    columns.push(column);
  });
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c.name))
      throw bad(`answer column ${JSON.stringify(c.name)} appears twice (name the measure with "as")`);
    seen.add(c.name);
  }
  const byName = new Map(columns.map((c) => [c.name, c]));
  const keys: SortKey[] = spec.sort.map((s, i) => {
    const column = byName.get(s.by);
    if (!column) throw bad(`sort[${i}].by: ${JSON.stringify(s.by)} is not a dimension or measure of this query`);
    return { column, dir: s.dir };
  });
  for (const c of columns)
    if (c.role === 'dimension' && !keys.some((k) => k.column === c)) keys.push({ column: c, dir: 'asc' });
  const where = selectionsWhere(spec.selections, schema, p);
  const dims = columns.filter((c) => c.role === 'dimension').map((c) => ident(c.name));
  const grouped = dims.length > 0;
  const inner =
    `SELECT ${select.join(', ')} FROM ${ident(schema.table)} WHERE ${where}` +
    (grouped ? ` GROUP BY ${dims.join(', ')}` : '');
  return { inner, params: p, columns, keys, grouped };
}

/** ORDER BY of the keys; NULLs last both ways (the keyset predicate assumes it). */
export const orderBy = (keys: SortKey[]) =>
  keys.map((k) => `${ident(k.column.name)} ${k.dir === 'asc' ? 'ASC' : 'DESC'} NULLS LAST`).join(', ');

/**
 * Rows strictly after `last` (the previous page's last key values) in the order of `keys`:
 * (k1 after v1) OR (k1 = v1 AND k2 after v2) OR …, NULLs last.
 */
export function afterPredicate(keys: SortKey[], last: CellValue[], p: Params): string {
  const terms: string[] = [];
  for (let i = 0; i < keys.length; i++) {
    const same = keys
      .slice(0, i)
      .map((k, j) => `${ident(k.column.name)} IS NOT DISTINCT FROM ${p.typed(last[j]!, k.column)}`);
    const k = keys[i]!;
    const col = ident(k.column.name);
    const v = last[i]!;
    // After a NULL (last in either direction) only the same NULL can tie; nothing is after it.
    if (v === null) continue;
    const beyond = `(${col} ${k.dir === 'asc' ? '>' : '<'} ${p.typed(v, k.column)} OR ${col} IS NULL)`;
    terms.push(`(${[...same, beyond].join(' AND ')})`);
  }
  return terms.length === 0 ? 'FALSE' : terms.join(' OR ');
}

/** A list box: each value of the field with its count under the other fields' selections. */
export function compileFieldValues(
  spec: FieldValuesSpec,
  schema: TableSchema,
): { sql: string; params: Params; field: SchemaField } {
  const p = new Params();
  const f = field(schema, spec.field, 'field');
  const col = ident(f.name);
  const others = selectionsWhere(spec.selections, schema, p, f.name);
  const search =
    spec.search === undefined ? 'TRUE' : `contains(lower(CAST(${col} AS VARCHAR)), lower(${p.add(spec.search)}))`;
  const sql =
    `SELECT ${col} AS value, count(*) FILTER (WHERE ${others}) AS possible_rows FROM ${ident(schema.table)} ` +
    `WHERE ${search} GROUP BY ${col} ORDER BY possible_rows > 0 DESC, ${col} ASC NULLS LAST LIMIT ${p.add(spec.limit + 1)}`;
  return { sql, params: p, field: f };
}
