import { z } from 'zod';

/**
 * A query as users send it: a spec, never SQL. Field names are checked against the version's
 * schema when the spec is compiled (query/sql.ts); here only the shape and the caps.
 */

export const QUERY_LIMITS = {
  /** Rows (or groups) per answer page. */
  maxLimit: 10_000,
  /** Values of one `field in [values]` selection. */
  maxSelectionValues: 1000,
  selections: 32,
  dimensions: 8,
  measures: 16,
  sort: 8,
  /** Bytes of a field name or a search text. */
  maxText: 256,
} as const;

const fieldName = z.string().min(1).max(QUERY_LIMITS.maxText);
/** A cell value in a selection or a cursor: what JSON carries (dates as ISO strings). */
export const cellValue = z.union([z.string().max(4096), z.number(), z.boolean(), z.null()]);
export type CellValue = z.infer<typeof cellValue>;

const bound = z.union([z.number(), z.string().max(64)]);

export const selectionSchema = z.union([
  z.strictObject({ field: fieldName, values: z.array(cellValue).min(1).max(QUERY_LIMITS.maxSelectionValues) }),
  z
    .strictObject({ field: fieldName, range: z.strictObject({ min: bound.optional(), max: bound.optional() }) })
    .refine((s) => s.range.min !== undefined || s.range.max !== undefined, {
      message: 'a range needs min, max or both',
      path: ['range'],
    }),
  z.strictObject({ field: fieldName, contains: z.string().min(1).max(QUERY_LIMITS.maxText) }),
]);
export type Selection = z.infer<typeof selectionSchema>;

export const MEASURE_OPS = ['sum', 'count', 'count_distinct', 'avg', 'min', 'max'] as const;
export type MeasureOp = (typeof MEASURE_OPS)[number];

export const measureSchema = z
  .strictObject({
    op: z.enum(MEASURE_OPS),
    /** Absent only for `count` (rows). */
    field: fieldName.optional(),
    /** The answer column's name; default `<op>_<field>` (`count` for rows). */
    as: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'letters, digits and _, not starting with a digit')
      .optional(),
  })
  .refine((m) => m.field !== undefined || m.op === 'count', { message: 'this measure needs a field', path: ['field'] });
export type Measure = z.infer<typeof measureSchema>;

export const sortSchema = z.strictObject({
  /** A dimension or a measure's name (its `as`). */
  by: fieldName,
  dir: z.enum(['asc', 'desc']).default('asc'),
});

export const querySpecSchema = z
  .strictObject({
    selections: z.array(selectionSchema).max(QUERY_LIMITS.selections).default([]),
    dimensions: z.array(fieldName).max(QUERY_LIMITS.dimensions).default([]),
    measures: z.array(measureSchema).max(QUERY_LIMITS.measures).default([]),
    sort: z.array(sortSchema).max(QUERY_LIMITS.sort).default([]),
    limit: z.number().int().min(1).max(QUERY_LIMITS.maxLimit).default(100),
    /** The `next` of the previous page: keyset paging, stable on one version. */
    after: z.string().max(16_384).optional(),
  })
  .refine((q) => q.dimensions.length > 0 || q.measures.length > 0, {
    message: 'a query needs at least one dimension or measure',
    path: ['dimensions'],
  });
export type QuerySpec = z.output<typeof querySpecSchema>;
export type QuerySpecInput = z.input<typeof querySpecSchema>;

export const fieldValuesSpecSchema = z.strictObject({
  field: fieldName,
  selections: z.array(selectionSchema).max(QUERY_LIMITS.selections).default([]),
  /** Values whose text contains this (case-insensitive). */
  search: z.string().min(1).max(QUERY_LIMITS.maxText).optional(),
  limit: z.number().int().min(1).max(QUERY_LIMITS.maxLimit).default(1000),
});
export type FieldValuesSpec = z.output<typeof fieldValuesSpecSchema>;
