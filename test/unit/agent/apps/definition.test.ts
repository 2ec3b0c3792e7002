import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkDefinitionSources, parseAppDefinition, type AppDefinition } from '../../../../agent/apps/definition.js';
import { openSourceDb } from '../../../../agent/apps/connectors/sqlite.js';
import { FortError } from '../../../../lib/errors.js';
import { tempDir } from '../../../helpers/fort.js';

const GOOD_TOML = `
id = "sales"
name = "Sales"
space = "sales"

[[tables]]
name = "orders"
connector = "csv"
path = "sales/orders.csv"
delimiter = ";"
columns = [
  { name = "id", type = "integer" },
  { name = "customer", type = "string" },
  { name = "amount", type = "number" },
  { name = "paid", type = "boolean" },
  { name = "day", type = "date" },
]

[[tables]]
name = "customers"
connector = "sqlite"
database = "crm/crm.db"
query = "SELECT id, name FROM customers"

[[tables]]
name = "rates"
connector = "http"
url = "https://rates.intranet.example/rates.json"
format = "json"
columns = [ { name = "code", type = "string" }, { name = "rate", type = "number" } ]
`;

const EXPECTED: AppDefinition = {
  id: 'sales',
  name: 'Sales',
  space: 'sales',
  tables: [
    {
      name: 'orders',
      connector: 'csv',
      path: 'sales/orders.csv',
      delimiter: ';',
      quote: '"',
      columns: [
        { name: 'id', type: 'integer' },
        { name: 'customer', type: 'string' },
        { name: 'amount', type: 'number' },
        { name: 'paid', type: 'boolean' },
        { name: 'day', type: 'date' },
      ],
    },
    { name: 'customers', connector: 'sqlite', database: 'crm/crm.db', query: 'SELECT id, name FROM customers' },
    {
      name: 'rates',
      connector: 'http',
      url: 'https://rates.intranet.example/rates.json',
      format: 'json',
      delimiter: ',',
      quote: '"',
      columns: [
        { name: 'code', type: 'string' },
        { name: 'rate', type: 'number' },
      ],
    },
  ],
};

/** A minimal valid definition (JSON) with `tables` replaced. */
const withTables = (tables: unknown[]) => JSON.stringify({ id: 'app', name: 'App', space: 'space', tables });
const csvTable = (extra: Record<string, unknown> = {}) => ({
  name: 't',
  connector: 'csv',
  path: 't.csv',
  columns: [{ name: 'a', type: 'string' }],
  ...extra,
});

function definitionError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FortError);
    expect((err as FortError).code).toBe('FORT_ERR_DEFINITION');
    return (err as Error).message;
  }
  throw new Error('expected FORT_ERR_DEFINITION, nothing was thrown');
}

const parseJson = (text: string) => () => parseAppDefinition(text, 'json');

describe('parseAppDefinition', () => {
  it('reads TOML, with defaults filled in', () => {
    expect(parseAppDefinition(GOOD_TOML, 'toml')).toEqual(EXPECTED);
  });

  it('reads the same definition as JSON', () => {
    const json = JSON.stringify({
      ...EXPECTED,
      tables: EXPECTED.tables.map((t) =>
        t.connector === 'http'
          ? { name: t.name, connector: t.connector, url: t.url, format: t.format, columns: t.columns }
          : t,
      ),
    });
    expect(parseAppDefinition(json, 'json')).toEqual(EXPECTED);
  });

  it('names the field path and why for each mistake', () => {
    const cases: [string, string][] = [
      [
        withTables([csvTable(), { name: 'u', connector: 'ftp', path: 'x' }]),
        'tables[1].connector: expected one of csv, sqlite, http',
      ],
      [withTables([{ name: 'u', path: 'x' }]), 'tables[0].connector: required field is missing'],
      [withTables([csvTable({ colour: 'red' })]), 'tables[0].colour: unknown field'],
      [
        JSON.stringify({ id: 'app', name: 'App', space: 's', tables: [csvTable()], owner: 'x' }),
        'owner: unknown field',
      ],
      [
        withTables([csvTable({ name: 'orders' }), csvTable({ name: 'Orders' })]),
        'tables[1].name: duplicate table name (same as tables[0].name)',
      ],
      [
        withTables([
          csvTable({
            columns: [
              { name: 'a', type: 'string' },
              { name: 'b', type: 'money' },
            ],
          }),
        ]),
        'tables[0].columns[1].type: expected one of string, integer, number, boolean, date',
      ],
      [
        withTables([
          csvTable({
            columns: [
              { name: 'a', type: 'string' },
              { name: 'A', type: 'integer' },
            ],
          }),
        ]),
        'tables[0].columns[1].name: duplicate column name (same as columns[0].name)',
      ],
      [withTables([csvTable({ columns: [] })]), 'tables[0].columns: expected at least one column'],
      [
        withTables([csvTable({ columns: [{ name: 'a', type: 'string', width: 3 }] })]),
        'tables[0].columns[0].width: unknown field',
      ],
      [
        withTables([csvTable({ name: '1orders' })]),
        'tables[0].name: expected 1-64 letters, digits or "_", not starting with a digit',
      ],
      [
        withTables([csvTable({ name: 'order-lines' })]),
        'tables[0].name: expected 1-64 letters, digits or "_", not starting with a digit',
      ],
      [
        withTables([csvTable({ name: 'a'.repeat(65) })]),
        'tables[0].name: expected 1-64 letters, digits or "_", not starting with a digit',
      ],
      [
        withTables([csvTable({ name: 'sqlite_stat1' })]),
        'tables[0].name: names starting with "sqlite_" are reserved by SQLite',
      ],
      [withTables([csvTable({ delimiter: ';;' })]), 'tables[0].delimiter: expected a single delimiter character'],
      [withTables([csvTable({ quote: ',' })]), 'tables[0].quote: must differ from the delimiter'],
      [withTables([csvTable({ delimiter: '\n' })]), 'tables[0].delimiter: a line break cannot be the delimiter'],
      [
        withTables([{ name: 's', connector: 'sqlite', database: 'x.db' }]),
        'tables[0].query: required field is missing',
      ],
      [
        withTables([{ name: 's', connector: 'sqlite', database: 'x.db', query: '  ' }]),
        'tables[0].query: expected a SELECT statement',
      ],
      [
        withTables([
          { name: 'h', connector: 'http', url: 'http://rates.example/r.csv', columns: [{ name: 'a', type: 'string' }] },
        ]),
        'tables[0].url: expected an https:// URL',
      ],
      [
        withTables([
          {
            name: 'h',
            connector: 'http',
            url: 'https://u:p@rates.example/r.csv',
            columns: [{ name: 'a', type: 'string' }],
          },
        ]),
        'tables[0].url: credentials in the URL are not accepted',
      ],
      [
        withTables([
          {
            name: 'h',
            connector: 'http',
            url: 'https://rates.example/r',
            format: 'json',
            delimiter: ';',
            columns: [{ name: 'a', type: 'string' }],
          },
        ]),
        'tables[0].delimiter: only for format = "csv"',
      ],
      [
        withTables([
          {
            name: 'h',
            connector: 'http',
            url: 'https://rates.example/r',
            format: 'xml',
            columns: [{ name: 'a', type: 'string' }],
          },
        ]),
        'tables[0].format: expected one of csv, json',
      ],
      [withTables([]), 'tables: expected at least one table'],
      [
        JSON.stringify({ id: '-x', name: 'App', space: 's', tables: [csvTable()] }),
        'id: expected 1-128 characters of letters, digits, ".", "_", "-" (not starting with a symbol)',
      ],
      [JSON.stringify({ name: 'App', space: 's', tables: [csvTable()] }), 'id: required field is missing'],
      ['[]', '(root): expected a definition with id, name, space and tables'],
    ];
    for (const [text, message] of cases) expect(definitionError(parseJson(text)), text).toBe(message);
  });

  it('lists every problem at once', () => {
    const text = withTables([csvTable({ name: '9' }), { name: 'x', connector: 'nope' }]);
    expect(definitionError(parseJson(text))).toBe(
      'tables[0].name: expected 1-64 letters, digits or "_", not starting with a digit; tables[1].connector: expected one of csv, sqlite, http',
    );
  });

  it('reports TOML and JSON syntax errors', () => {
    expect(definitionError(() => parseAppDefinition('id = "x"\nname = ', 'toml'))).toMatch(
      /^line 2, column \d+: invalid TOML: /,
    );
    expect(definitionError(() => parseAppDefinition('{"id": ', 'json'))).toMatch(/^invalid JSON: /);
  });

  it('gives TOML field paths for [[tables]] entries', () => {
    const toml =
      'id = "a"\nname = "A"\nspace = "s"\n[[tables]]\nname = "t"\nconnector = "csv"\npath = "t.csv"\ncolumns = [ { name = "a", type = "text" } ]\n';
    expect(definitionError(() => parseAppDefinition(toml, 'toml'))).toBe(
      'tables[0].columns[0].type: expected one of string, integer, number, boolean, date',
    );
  });
});

describe('checkDefinitionSources', () => {
  let root: string;
  let dataA: string;
  let dataB: string;
  let outside: string;
  const opts = () => ({ dataDirs: [dataA, dataB], httpAllowedHosts: ['rates.intranet.example', '10.1.2.3'] });
  const csvDef = (path: string) => parseAppDefinition(withTables([csvTable({ path })]), 'json');
  const sqliteDef = (query: string, database = 'crm/crm.db') =>
    parseAppDefinition(withTables([{ name: 's', connector: 'sqlite', database, query }]), 'json');
  const httpDef = (url: string) =>
    parseAppDefinition(
      withTables([{ name: 'h', connector: 'http', url, columns: [{ name: 'a', type: 'string' }] }]),
      'json',
    );
  const check =
    (def: AppDefinition, o = opts()) =>
    () =>
      checkDefinitionSources(def, o);

  beforeAll(() => {
    root = tempDir('definition');
    dataA = join(root, 'data-a');
    dataB = join(root, 'data-b');
    outside = join(root, 'outside');
    for (const d of [dataA, dataB, outside, join(dataA, 'crm'), join(dataA, 'sub')]) mkdirSync(d, { recursive: true });
    writeFileSync(join(dataA, 'a.csv'), 'a\n1\n');
    writeFileSync(join(dataB, 'b.csv'), 'a\n1\n');
    writeFileSync(join(outside, 'secret.csv'), 'a\nsecret\n');
    symlinkSync(join(outside, 'secret.csv'), join(dataA, 'escape.csv'));
    symlinkSync(outside, join(dataA, 'escape-dir'));
    symlinkSync(join(dataB, 'b.csv'), join(dataA, 'to-b.csv'));
    writeFileSync(join(dataA, 'not-a-db.db'), 'hello, this is not SQLite\n');
    const db = new Database(join(dataA, 'crm', 'crm.db'));
    db.exec(
      "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('Ada'), ('Grace')",
    );
    db.close();
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('accepts files inside the data dirs: relative (any dir, in order), absolute, symlinks within', () => {
    for (const path of ['a.csv', 'b.csv', join(dataB, 'b.csv'), 'sub/../a.csv', 'to-b.csv'])
      expect(check(csvDef(path)), path).not.toThrow();
  });

  it('accepts a data dir that is itself a symlink, named either way', () => {
    const linked = join(root, 'linked-data');
    symlinkSync(dataB, linked);
    const o = { dataDirs: [linked], httpAllowedHosts: [] };
    for (const path of ['b.csv', join(linked, 'b.csv'), join(dataB, 'b.csv')])
      expect(check(csvDef(path), o), path).not.toThrow();
    expect(definitionError(check(csvDef(join(dataA, 'a.csv')), o))).toBe(
      'tables[0].path: is outside reloads.data_dirs',
    );
  });

  it('refuses paths that escape the data dirs', () => {
    expect(definitionError(check(csvDef('../outside/secret.csv')))).toBe(
      'tables[0].path: escapes reloads.data_dirs (through "..")',
    );
    expect(definitionError(check(csvDef('sub/../../outside/secret.csv')))).toBe(
      'tables[0].path: escapes reloads.data_dirs (through "..")',
    );
    expect(definitionError(check(csvDef(join(outside, 'secret.csv'))))).toBe(
      'tables[0].path: is outside reloads.data_dirs',
    );
    expect(definitionError(check(csvDef('escape.csv')))).toBe(
      'tables[0].path: resolves (through a symbolic link) outside reloads.data_dirs',
    );
    expect(definitionError(check(csvDef('escape-dir/secret.csv')))).toBe(
      'tables[0].path: resolves (through a symbolic link) outside reloads.data_dirs',
    );
    expect(definitionError(check(csvDef(join(dataA, 'escape.csv'))))).toBe(
      'tables[0].path: resolves (through a symbolic link) outside reloads.data_dirs',
    );
  });

  it('refuses missing files, directories and sources without data dirs', () => {
    expect(definitionError(check(csvDef('missing.csv')))).toBe(
      'tables[0].path: file does not exist in any of reloads.data_dirs',
    );
    expect(definitionError(check(csvDef(join(dataA, 'missing.csv'))))).toBe('tables[0].path: file does not exist');
    expect(definitionError(check(csvDef('sub')))).toBe('tables[0].path: is not a regular file');
    expect(definitionError(check(csvDef('a.csv'), { dataDirs: [], httpAllowedHosts: [] }))).toBe(
      'tables[0].path: no reloads.data_dirs are configured, so no file may be read',
    );
  });

  it('checks http hosts against reloads.http_allowed_hosts', () => {
    expect(check(httpDef('https://Rates.Intranet.Example:8443/r.csv'))).not.toThrow();
    expect(check(httpDef('https://10.1.2.3/r.csv'))).not.toThrow();
    expect(definitionError(check(httpDef('https://evil.example/r.csv')))).toBe(
      'tables[0].url: host evil.example is not in reloads.http_allowed_hosts',
    );
    expect(definitionError(check(httpDef('https://rates.intranet.example.evil.example/r.csv')))).toBe(
      'tables[0].url: host rates.intranet.example.evil.example is not in reloads.http_allowed_hosts',
    );
  });

  it('accepts one read-only SELECT or WITH ... SELECT', () => {
    for (const q of [
      'SELECT id, name FROM customers',
      'select id from customers;',
      '-- the customers\n/* all */ SELECT * FROM customers',
      'WITH named AS (SELECT id, name FROM customers WHERE name IS NOT NULL) SELECT * FROM named',
    ])
      expect(check(sqliteDef(q)), q).not.toThrow();
  });

  it('refuses anything but a single read-only SELECT', () => {
    const cases: [string, string][] = [
      ['DELETE FROM customers', 'tables[0].query: expected a SELECT (or WITH ... SELECT) statement, got DELETE'],
      ['PRAGMA table_info(customers)', 'tables[0].query: expected a SELECT (or WITH ... SELECT) statement, got PRAGMA'],
      [
        `ATTACH '${join(outside, 'x.db')}' AS x`,
        'tables[0].query: expected a SELECT (or WITH ... SELECT) statement, got ATTACH',
      ],
      ['SELECT 1; SELECT 2', 'tables[0].query: expected exactly one SQL statement'],
      ['SELECT 1; DROP TABLE customers', 'tables[0].query: expected exactly one SQL statement'],
      [
        'WITH x AS (SELECT id FROM customers) DELETE FROM customers WHERE id IN x',
        'tables[0].query: expected a read-only statement that returns rows',
      ],
      [
        'SELECT id, name AS ID FROM customers',
        'tables[0].query: the query returns two columns named "ID"; give them distinct names with AS',
      ],
      ['SELECT nope FROM customers', 'tables[0].query: the SQL does not compile: no such column: nope'],
    ];
    for (const [q, message] of cases) expect(definitionError(check(sqliteDef(q))), q).toBe(message);
    expect(definitionError(check(sqliteDef('SELECT 1', 'not-a-db.db')))).toBe(
      'tables[0].query: the SQL does not compile: file is not a database',
    );
    // Nothing was written by the refused statements.
    const db = new Database(join(dataA, 'crm', 'crm.db'), { readonly: true });
    expect(db.prepare('SELECT count(*) FROM customers').pluck().get()).toBe(2);
    db.close();
  });

  it('opens the source read-only with query_only set', () => {
    const db = openSourceDb(join(dataA, 'crm', 'crm.db'));
    try {
      expect(db.readonly).toBe(true);
      expect(db.pragma('query_only', { simple: true })).toBe(1);
    } finally {
      db.close();
    }
  });

  it("reports every table's problem at once", () => {
    const def = parseAppDefinition(
      withTables([
        csvTable({ name: 'a', path: 'missing.csv' }),
        { name: 'b', connector: 'sqlite', database: 'crm/crm.db', query: 'PRAGMA user_version' },
        csvTable({ name: 'c', path: 'a.csv' }),
      ]),
      'json',
    );
    expect(definitionError(check(def))).toBe(
      'tables[0].path: file does not exist in any of reloads.data_dirs; tables[1].query: expected a SELECT (or WITH ... SELECT) statement, got PRAGMA',
    );
  });
});
