import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { httpsUrl, identifier } from '../../lib/config/fields.js';
import { FortError } from '../../lib/errors.js';
import { resolveDataFile } from './confine.js';
import { hostAllowed } from './connectors/http.js';
import { openSourceDb, selectProblem } from './connectors/sqlite.js';

/**
 * An app's load definition: which tables its versions hold and where each one's rows come
 * from. Written by an admin as TOML or JSON; every problem is reported as
 * `<field path>: <why>` (e.g. `tables[1].connector: expected one of csv, sqlite, http`),
 * with list indexes counted from 0.
 */

/** A table name is an SQLite identifier we never need to worry about quoting (we quote anyway). */
const tableName = () =>
  z
    .string({ error: 'expected a table name' })
    .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, {
      error: 'expected 1-64 letters, digits or "_", not starting with a digit',
    })
    .refine((n) => !n.toLowerCase().startsWith('sqlite_'), {
      error: 'names starting with "sqlite_" are reserved by SQLite',
    });

const COLUMN_TYPES = ['string', 'integer', 'number', 'boolean', 'date'] as const;

const column = z.strictObject(
  {
    // Header cells are matched exactly; any text but control characters.
    name: z
      .string({ error: 'expected a column name' })
      // eslint-disable-next-line no-control-regex -- refusing control characters is the point
      .regex(/^[^\x00-\x1f\x7f]{1,128}$/, { error: 'expected 1-128 characters without control characters' }),
    type: z.enum(COLUMN_TYPES, { error: `expected one of ${COLUMN_TYPES.join(', ')}` }),
  },
  { error: 'expected a column { name, type }' },
);

const columns = () =>
  z
    .array(column, { error: 'expected a list of columns' })
    .min(1, { error: 'expected at least one column' })
    .max(2000, { error: 'expected at most 2000 columns' })
    .superRefine((cols, ctx) => {
      const seen = new Map<string, number>();
      cols.forEach((c, i) => {
        // SQLite column names are case-insensitive: "ID" and "id" would collide.
        const key = c.name.toLowerCase();
        const first = seen.get(key);
        if (first !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: [i, 'name'],
            message: `duplicate column name (same as columns[${first}].name)`,
          });
        else seen.set(key, i);
      });
    });

const oneChar = (what: string) =>
  z
    .string({ error: `expected a single ${what} character` })
    .length(1, { error: `expected a single ${what} character` })
    .refine((c) => c !== '\n' && c !== '\r', { error: `a line break cannot be the ${what}` });

const path = (what: string) => z.string({ error: `expected a ${what}` }).min(1, { error: `expected a ${what}` });

/** The quote and the delimiter must differ, or no field could be parsed back. */
const distinctQuote = (t: { delimiter?: string | undefined; quote?: string | undefined }, ctx: z.RefinementCtx) => {
  if ((t.delimiter ?? ',') === (t.quote ?? '"'))
    ctx.addIssue({ code: 'custom', path: ['quote'], message: 'must differ from the delimiter' });
};

const csvTable = z
  .strictObject({
    name: tableName(),
    connector: z.literal('csv'),
    path: path('file path (relative to one of reloads.data_dirs, or absolute inside one)'),
    delimiter: oneChar('delimiter').default(','),
    quote: oneChar('quote').default('"'),
    columns: columns(),
  })
  .superRefine(distinctQuote);

const sqliteTable = z.strictObject({
  name: tableName(),
  connector: z.literal('sqlite'),
  database: path('database file path (relative to one of reloads.data_dirs, or absolute inside one)'),
  query: z.string({ error: 'expected a SELECT statement' }).trim().min(1, { error: 'expected a SELECT statement' }),
});

const httpTable = z
  .strictObject({
    name: tableName(),
    connector: z.literal('http'),
    // Status events quote the URL's host: credentials have no place in it.
    url: httpsUrl().refine((u) => !/^https:\/\/[^/?#]*@/i.test(u), {
      error: 'credentials in the URL are not accepted',
    }),
    format: z.enum(['csv', 'json'], { error: 'expected one of csv, json' }).default('csv'),
    delimiter: oneChar('delimiter').optional(),
    quote: oneChar('quote').optional(),
    columns: columns(),
  })
  .superRefine((t, ctx) => {
    if (t.format === 'json') {
      for (const k of ['delimiter', 'quote'] as const)
        if (t[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: 'only for format = "csv"' });
    } else {
      distinctQuote(t, ctx);
    }
  })
  .transform((t) => ({ ...t, delimiter: t.delimiter ?? ',', quote: t.quote ?? '"' }));

const CONNECTORS = 'expected one of csv, sqlite, http';

export const appDefinitionSchema = z
  .strictObject(
    {
      id: identifier(),
      name: z
        .string({ error: 'expected a display name' })
        .trim()
        .min(1, { error: 'expected a display name' })
        .max(200, { error: 'expected at most 200 characters' }),
      space: identifier(),
      tables: z
        .array(z.discriminatedUnion('connector', [csvTable, sqliteTable, httpTable], { error: CONNECTORS }), {
          error: 'expected a list of tables',
        })
        .min(1, { error: 'expected at least one table' })
        .max(1000, { error: 'expected at most 1000 tables' }),
    },
    { error: 'expected a definition with id, name, space and tables' },
  )
  .superRefine((def, ctx) => {
    const seen = new Map<string, number>();
    def.tables.forEach((t, i) => {
      // One SQLite file per version: table names share its case-insensitive namespace.
      const key = t.name.toLowerCase();
      const first = seen.get(key);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['tables', i, 'name'],
          message: `duplicate table name (same as tables[${first}].name)`,
        });
      else seen.set(key, i);
    });
  });

export type AppDefinition = z.output<typeof appDefinitionSchema>;
export type TableDefinition = AppDefinition['tables'][number];

const definitionError = (problems: string[]) => new FortError('FORT_ERR_DEFINITION', problems.join('; '));

/** `tables[1].columns[0].type` from zod's ['tables', 1, 'columns', 0, 'type']. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out;
}

function present(raw: unknown, path: readonly PropertyKey[]): boolean {
  let cur = raw;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) return false;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return true;
}

function describeIssues(issues: readonly z.core.$ZodIssue[], raw: unknown): string[] {
  return issues.flatMap((issue) => {
    const at = fieldPath(issue.path);
    if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => `${at ? `${at}.` : ''}${k}: unknown field`);
    if (!present(raw, issue.path)) return [`${at || '(root)'}: required field is missing`];
    return [`${at || '(root)'}: ${issue.message}`];
  });
}

/** Parse and validate a definition; FORT_ERR_DEFINITION lists every problem as `<path>: <why>`. */
export function parseAppDefinition(text: string, format: 'toml' | 'json'): AppDefinition {
  let raw: unknown;
  try {
    raw = format === 'toml' ? parseToml(text) : JSON.parse(text);
  } catch (err) {
    if (err instanceof TomlError)
      throw definitionError([`line ${err.line}, column ${err.column}: invalid TOML: ${err.message.split('\n')[0]}`]);
    throw definitionError([`invalid ${format === 'toml' ? 'TOML' : 'JSON'}: ${(err as Error).message}`]);
  }
  const parsed = appDefinitionSchema.safeParse(raw);
  if (!parsed.success) throw definitionError(describeIssues(parsed.error.issues, raw));
  return parsed.data;
}

export interface SourceCheckOptions {
  dataDirs: string[];
  httpAllowedHosts: string[];
}

/** Why the query cannot be a sqlite source, or undefined. */
function queryProblem(file: string, query: string): string | undefined {
  let db;
  try {
    db = openSourceDb(file);
  } catch (err) {
    return `cannot open the database (${(err as { code?: string }).code ?? (err as Error).message})`;
  }
  try {
    return selectProblem(db, query);
  } finally {
    db.close();
  }
}

/**
 * Check what a definition reads against this fort: files inside `reloads.data_dirs` (real
 * paths) and present, SQL a single read-only SELECT, http hosts allowed. At registration and
 * again at every reload (files and the config change in between). Throws FORT_ERR_DEFINITION
 * listing every problem.
 */
export function checkDefinitionSources(def: AppDefinition, opts: SourceCheckOptions): void {
  const problems: string[] = [];
  def.tables.forEach((t, i) => {
    const at = `tables[${i}]`;
    try {
      switch (t.connector) {
        case 'csv':
          resolveDataFile(t.path, opts.dataDirs, `${at}.path`);
          break;
        case 'sqlite': {
          const file = resolveDataFile(t.database, opts.dataDirs, `${at}.database`);
          const problem = queryProblem(file, t.query);
          if (problem) problems.push(`${at}.query: ${problem}`);
          break;
        }
        case 'http': {
          const url = new URL(t.url);
          if (!hostAllowed(url, opts.httpAllowedHosts))
            problems.push(`${at}.url: host ${url.hostname} is not in reloads.http_allowed_hosts`);
          break;
        }
      }
    } catch (err) {
      if (!(err instanceof FortError)) throw err;
      problems.push(err.message);
    }
  });
  if (problems.length) throw definitionError(problems);
}
