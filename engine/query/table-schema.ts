import type { DuckDBConnection } from '@duckdb/node-api';
import { FortError } from '../../lib/errors.js';

/** What a query may do with a field, from its DuckDB type. */
export type FieldKind = 'integer' | 'number' | 'text' | 'date' | 'timestamp' | 'boolean' | 'other';

export interface SchemaField {
  name: string;
  /** DuckDB's type name, e.g. BIGINT, DECIMAL(18,3), DATE (from the version itself, never from users). */
  type: string;
  kind: FieldKind;
}

export interface TableSchema {
  table: string;
  fields: ReadonlyMap<string, SchemaField>;
}

export function fieldKind(type: string): FieldKind {
  if (/^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|UHUGEINT)$/.test(type)) return 'integer';
  if (/^(FLOAT|DOUBLE|REAL|DECIMAL\(\d+,\d+\))$/.test(type)) return 'number';
  if (type === 'VARCHAR') return 'text';
  if (type === 'DATE') return 'date';
  if (/^TIMESTAMP/.test(type)) return 'timestamp';
  if (type === 'BOOLEAN') return 'boolean';
  return 'other';
}

/** The type name as SQL may cast to it: only names DuckDB itself reported, of a known shape. */
export function castType(f: SchemaField): string {
  if (!/^[A-Z][A-Z0-9_ ]*(\(\d+(,\d+)?\))?$/.test(f.type))
    throw new FortError('FORT_ERR_INTERNAL', `field ${JSON.stringify(f.name)} has a type queries cannot use`);
  return f.type;
}

/** The columns of `table` as DuckDB describes them. */
export async function readTableSchema(conn: DuckDBConnection, table: string): Promise<TableSchema> {
  const reader = await conn.runAndReadAll(
    'SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position',
    [table],
  );
  const fields = new Map<string, SchemaField>();
  for (const [name, type] of reader.getRows() as [string, string][])
    fields.set(name, { name, type, kind: fieldKind(type) });
  if (fields.size === 0) throw new FortError('FORT_ERR_NOT_FOUND', `no table ${JSON.stringify(table)} in this version`);
  return { table, fields };
}
