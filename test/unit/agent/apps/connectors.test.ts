import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { openTableSource, type SourceOptions } from '../../../../agent/apps/connectors/index.js';
import { CONVERTERS, csvBatches } from '../../../../agent/apps/connectors/csv.js';
import { httpSource, JsonArraySplitter } from '../../../../agent/apps/connectors/http.js';
import type { TableSource } from '../../../../agent/apps/connectors/types.js';
import { parseAppDefinition, type TableDefinition } from '../../../../agent/apps/definition.js';
import type { PkiPaths } from '../../../../lib/pki/layout.js';
import { tempDir, testPki } from '../../../helpers/fort.js';
import { fortFailure } from '../../../helpers/assertions.js';

const never = () => new AbortController().signal;

async function collect(source: TableSource, signal = never()): Promise<unknown[][]> {
  const rows: unknown[][] = [];
  for await (const row of source.rows(signal)) rows.push(row);
  return rows;
}

const failure = fortFailure;

/** A table definition through the real parser, so defaults are what a definition gets. */
function table(t: Record<string, unknown>): TableDefinition {
  return parseAppDefinition(JSON.stringify({ id: 'app', name: 'App', space: 's', tables: [t] }), 'json').tables[0]!;
}

const ORDER_COLUMNS = [
  { name: 'id', type: 'integer' },
  { name: 'customer', type: 'string' },
  { name: 'amount', type: 'number' },
  { name: 'paid', type: 'boolean' },
  { name: 'day', type: 'date' },
];

/** Chunks of `text` of the given size, as a stream would hand them on. */
async function* chunksOf(text: string, size: number): AsyncGenerator<string> {
  for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size);
}

describe('value converters', () => {
  it('parse numbers to the very double Number() gives', () => {
    let seed = 42;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const digits = (n: number) => Array.from({ length: n }, () => String(rnd(10))).join('');
    const samples = [
      '0',
      '-0',
      '0.1',
      '0.3',
      '-0.25',
      '5.',
      '.5',
      '+7',
      '123456789012345',
      '1234567890123456',
      '9007199254740993',
      '0.000000000000001',
      '1e3',
      '-1.5E-7',
      '  12.5 ',
      '00012.50',
    ];
    for (let i = 0; i < 5000; i++)
      samples.push(`${rnd(2) ? '-' : ''}${digits(1 + rnd(12))}${rnd(3) ? `.${digits(rnd(10))}` : ''}`);
    for (const s of samples) expect(CONVERTERS.number(s), s).toBe(Number(s) === 0 ? 0 : Number(s));
    for (const s of [
      '',
      '.',
      '-',
      '+.',
      '1.2.3',
      '1,5',
      '0x10',
      '0b1',
      '0o7',
      'Infinity',
      '-Infinity',
      'NaN',
      '1e400',
      '12abc',
      '1_000',
    ])
      expect(CONVERTERS.number(s), s).toBeUndefined();
  });

  it('parse integers only when whole and safe', () => {
    for (const [s, v] of [
      ['0', 0],
      ['-12', -12],
      ['+12', 12],
      ['007', 7],
      [' 42 ', 42],
      ['9007199254740991', 9007199254740991],
      ['-9007199254740991', -9007199254740991],
    ] as const)
      expect(CONVERTERS.integer(s), s).toBe(v);
    for (const s of ['1.0', '1e3', '9007199254740992', '-', 'x1', '0x1', '1 2'])
      expect(CONVERTERS.integer(s), s).toBeUndefined();
  });
});

describe('csv connector', () => {
  let root: string;
  let data: string;
  const opts = (): SourceOptions => ({ dataDirs: [data], httpAllowedHosts: [] });
  const write = (name: string, text: string) => writeFileSync(join(data, name), text);
  const csv = (path: string, extra: Record<string, unknown> = {}) =>
    openTableSource(table({ name: 'orders', connector: 'csv', path, columns: ORDER_COLUMNS, ...extra }), opts());

  beforeAll(() => {
    root = tempDir('connectors');
    data = join(root, 'data');
    mkdirSync(data);
    mkdirSync(join(root, 'outside'));
    writeFileSync(join(root, 'outside', 'secret.csv'), 'id,customer,amount,paid,day\n1,x,1,true,2024-01-01\n');
    symlinkSync(join(root, 'outside', 'secret.csv'), join(data, 'escape.csv'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('converts each declared type; an empty field is NULL', async () => {
    write(
      'orders.csv',
      [
        'id,customer,amount,paid,day',
        '1,"Smith, Ann",12.5,true,2024-02-29',
        '-2,"say ""hi""",-0.25,FALSE,1999-12-31',
        '+3,,1e3,yes,',
        ',plain,.5,No,2000-02-29',
        ' 9007199254740991 ,"",  7 ,1,2024-01-01',
        '6,"multi\nline",0,0,2024-12-31',
        '',
      ].join('\r\n'),
    );
    const source = csv('orders.csv');
    expect(source.table).toBe('orders');
    expect(source.columns).toEqual(ORDER_COLUMNS);
    expect(await collect(source)).toEqual([
      [1, 'Smith, Ann', 12.5, 1, '2024-02-29'],
      [-2, 'say "hi"', -0.25, 0, '1999-12-31'],
      [3, null, 1000, 1, null],
      [null, 'plain', 0.5, 0, '2000-02-29'],
      [9007199254740991, null, 7, 1, '2024-01-01'],
      [6, 'multi\nline', 0, 0, '2024-12-31'],
    ]);
  });

  it('reads another delimiter and quote character', async () => {
    write('semi.csv', "id;customer;amount;paid;day\n1;'a;b';1,5;no;2024-01-01\n".replace('1,5', '1.5'));
    expect(await collect(csv('semi.csv', { delimiter: ';', quote: "'" }))).toEqual([[1, 'a;b', 1.5, 0, '2024-01-01']]);
  });

  it('names row and column of a value that does not parse, never the value', async () => {
    const bad: [string, string][] = [
      ['1,a,SECRET-42,true,2024-01-01', 'column "amount": expected a finite number'],
      ['SECRET,a,1,true,2024-01-01', 'column "id": expected an integer (a whole number within ±2^53)'],
      ['9007199254740993,a,1,true,2024-01-01', 'column "id": expected an integer (a whole number within ±2^53)'],
      ['1.5,a,1,true,2024-01-01', 'column "id": expected an integer (a whole number within ±2^53)'],
      ['1,a,0x10,true,2024-01-01', 'column "amount": expected a finite number'],
      ['1,a,Infinity,true,2024-01-01', 'column "amount": expected a finite number'],
      ['1,a,1,SECRET,2024-01-01', 'column "paid": expected a boolean (true/false, 1/0, yes/no)'],
      ['1,a,1,true,2023-02-29', 'column "day": expected a date (YYYY-MM-DD)'],
      ['1,a,1,true,24-01-01', 'column "day": expected a date (YYYY-MM-DD)'],
      ['1,a,1,true,2024-13-01', 'column "day": expected a date (YYYY-MM-DD)'],
    ];
    for (const [line, what] of bad) {
      write('bad.csv', `id,customer,amount,paid,day\n2,ok,1,true,2024-01-01\n${line}\n`);
      const err = await failure(collect(csv('bad.csv')));
      expect(err.code).toBe('FORT_ERR_RELOAD_SOURCE');
      expect(err.message).toBe(`table "orders": row 2, ${what}`);
      expect(err.message).not.toMatch(/SECRET|0x10|9007199254740993|2023-02-29|Infinity/);
    }
  });

  it('requires the header to name the declared columns in order, without quoting it', async () => {
    write('swapped.csv', 'id,customer,paid,amount,day\n1,a,true,1,2024-01-01\n');
    expect((await failure(collect(csv('swapped.csv')))).message).toBe(
      'table "orders": the header row does not match the declared columns: column 3 should be "amount"',
    );
    // A file without a header: its first data row must not end up in the message.
    write('no-header.csv', '1,SECRET,1,true\n');
    const err = await failure(collect(csv('no-header.csv')));
    expect(err.message).toBe(
      'table "orders": the header row has 4 columns, the definition declares 5 (id, customer, amount, paid, day)',
    );
    write('empty.csv', '');
    expect((await failure(collect(csv('empty.csv')))).message).toBe(
      'table "orders": the file is empty: a header row naming the columns is required',
    );
  });

  it('refuses rows with the wrong number of fields and malformed quoting', async () => {
    write('short.csv', 'id,customer,amount,paid,day\n1,a,1,true,2024-01-01\n2,b,1\n');
    expect((await failure(collect(csv('short.csv')))).message).toBe('table "orders": row 2 has 3 fields, expected 5');
    write('long.csv', 'id,customer,amount,paid,day\n1,a,1,true,2024-01-01,SECRET,x\n');
    expect((await failure(collect(csv('long.csv')))).message).toBe('table "orders": row 1 has 7 fields, expected 5');
    write('long-quoted.csv', 'id,customer,amount,paid,day\n1,"a",1,true,2024-01-01,"SECRET"\n');
    expect((await failure(collect(csv('long-quoted.csv')))).message).toBe(
      'table "orders": row 1 has 6 fields, expected 5',
    );
    write('trailing.csv', 'id,customer,amount,paid,day\n1,a,1,true,2024-01-01,\n');
    expect((await failure(collect(csv('trailing.csv')))).message).toBe(
      'table "orders": row 1 has 6 fields, expected 5',
    );
    write('unclosed.csv', 'id,customer,amount,paid,day\n1,a,1,true,2024-01-01\n2,"SECRET,1,true,2024-01-01\n');
    const err = await failure(collect(csv('unclosed.csv')));
    expect(err.message).toBe(
      'table "orders": malformed CSV at row 2: a quoted field is not closed before the end of the data',
    );
  });

  it('confines the file again when opened (a symlink pointing out)', () => {
    expect(() => csv('escape.csv')).toThrow(
      expect.objectContaining({
        code: 'FORT_ERR_DEFINITION',
        message: 'table "orders" path: resolves (through a symbolic link) outside reloads.data_dirs',
      }),
    );
  });

  it('stops promptly with FORT_ERR_RELOAD_CANCELLED when aborted mid-stream', async () => {
    const lines = ['id,customer,amount,paid,day'];
    for (let i = 1; i <= 200_000; i++)
      lines.push(`${i},customer ${i},${i / 100},${i % 2 ? 'true' : 'false'},2024-01-01`);
    write('big.csv', `${lines.join('\n')}\n`);
    const ac = new AbortController();
    let seen = 0;
    const err = await failure(
      (async () => {
        for await (const _row of csv('big.csv').rows(ac.signal)) {
          seen += 1;
          if (seen === 1000) ac.abort();
        }
      })(),
    );
    expect(err.code).toBe('FORT_ERR_RELOAD_CANCELLED');
    // Stopped at the next chunk boundary, far from the end of the file.
    expect(seen).toBeGreaterThanOrEqual(1000);
    expect(seen).toBeLessThan(50_000);
    // Aborted before the start: nothing is read.
    const before = new AbortController();
    before.abort();
    expect((await failure(collect(csv('big.csv'), before.signal))).code).toBe('FORT_ERR_RELOAD_CANCELLED');
  });

  it('hands rows on in small batches with the same content as rows()', async () => {
    write(
      'batch.csv',
      `id,customer,amount,paid,day\n${Array.from({ length: 150 }, (_, i) => `${i},c,1,1,2024-01-01`).join('\n')}\n`,
    );
    const source = csv('batch.csv');
    const sizes: number[] = [];
    const rows: unknown[][] = [];
    for await (const b of source.batches!(never())) {
      sizes.push(b.length);
      rows.push(...b);
    }
    expect(sizes).toEqual([64, 64, 22]);
    expect(rows).toEqual(await collect(source));
  });

  it('parses text handed on in arbitrary pieces (as from an HTTP body)', async () => {
    const text = 'id,customer,amount,paid,day\n1,"a,\nb",2.5,yes,2024-01-01\n2,c,3,no,\n';
    for (const size of [1, 3, 10]) {
      const rows: unknown[][] = [];
      for await (const b of csvBatches(
        chunksOf(text, size),
        { table: 't', columns: ORDER_COLUMNS as never, delimiter: ',', quote: '"' },
        never(),
      ))
        rows.push(...b);
      expect(rows).toEqual([
        [1, 'a,\nb', 2.5, 1, '2024-01-01'],
        [2, 'c', 3, 0, null],
      ]);
    }
  });
});

describe('sqlite connector', () => {
  let root: string;
  let data: string;
  const source = (query: string) =>
    openTableSource(table({ name: 'customers', connector: 'sqlite', database: 'crm.db', query }), {
      dataDirs: [data],
      httpAllowedHosts: [],
    });

  beforeAll(() => {
    root = tempDir('connectors-sqlite');
    data = join(root, 'data');
    mkdirSync(data);
    const db = new Database(join(data, 'crm.db'));
    db.exec('CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, balance REAL, photo BLOB)');
    const insert = db.prepare('INSERT INTO customers (id, name, balance, photo) VALUES (?, ?, ?, ?)');
    db.transaction(() => {
      for (let i = 1; i <= 5000; i++) insert.run(i, `customer ${i}`, i / 4, i === 1 ? Buffer.from([1, 2, 3]) : null);
      insert.run(2n ** 62n, 'big id', null, null);
    })();
    db.close();
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('takes its columns from the statement and streams the rows as SQLite gives them', async () => {
    const s = source('SELECT id, name, balance AS money, photo FROM customers ORDER BY id');
    expect(s.columns).toEqual([
      { name: 'id', type: 'any' },
      { name: 'name', type: 'any' },
      { name: 'money', type: 'any' },
      { name: 'photo', type: 'any' },
    ]);
    const rows = await collect(s);
    expect(rows).toHaveLength(5001);
    expect(rows[0]).toEqual([1n, 'customer 1', 0.25, Buffer.from([1, 2, 3])]);
    expect(rows[4999]).toEqual([5000n, 'customer 5000', 1250, null]);
    // Beyond 2^53 the id stays exact.
    expect(rows[5000]).toEqual([2n ** 62n, 'big id', null, null]);
  });

  it('yields to the event loop while reading', async () => {
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 0);
    let n = 0;
    try {
      for await (const _row of source('SELECT * FROM customers').rows(never())) n += 1;
    } finally {
      clearInterval(timer);
    }
    expect(n).toBe(5001);
    expect(ticks).toBeGreaterThan(0);
  });

  it('refuses a statement that is not a read-only SELECT when opened', () => {
    expect(() => source('DELETE FROM customers')).toThrow(
      expect.objectContaining({
        code: 'FORT_ERR_RELOAD_SOURCE',
        message: 'table "customers": expected a SELECT (or WITH ... SELECT) statement, got DELETE',
      }),
    );
    expect(() => source('SELECT 1; SELECT 2')).toThrow(
      expect.objectContaining({ message: 'table "customers": expected exactly one SQL statement' }),
    );
  });

  it('stops with FORT_ERR_RELOAD_CANCELLED when aborted', async () => {
    const ac = new AbortController();
    let seen = 0;
    const err = await failure(
      (async () => {
        for await (const _row of source('SELECT * FROM customers').rows(ac.signal)) if (++seen === 10) ac.abort();
      })(),
    );
    expect(err.code).toBe('FORT_ERR_RELOAD_CANCELLED');
    expect(seen).toBeLessThanOrEqual(1000);
    // The source connection was closed: the file can be written again by its owner.
    const db = new Database(join(data, 'crm.db'));
    db.exec('CREATE TABLE IF NOT EXISTS touched (x)');
    db.close();
  });
});

describe('http connector', () => {
  let pki: PkiPaths;
  let server: Server;
  let base: string;
  const bodies = new Map<string, { status?: number; body: string }>();

  beforeAll(async () => {
    pki = await testPki();
    server = createServer(
      { cert: readFileSync(pki.clientZone.clientApiCert), key: readFileSync(pki.clientZone.clientApiKey) },
      (req, res) => {
        const b = bodies.get(req.url ?? '');
        res.writeHead(b?.status ?? (b ? 200 : 404), { 'content-type': 'text/plain' });
        if (req.url?.includes('chunked')) {
          // No content-length: the size is only known while reading.
          const body = b?.body ?? '';
          for (let i = 0; i < body.length; i += 1000) res.write(body.slice(i, i + 1000));
          res.end();
        } else {
          res.end(b?.body ?? '');
        }
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(pki.root, { recursive: true, force: true });
  });

  const http = (path: string, extra: Record<string, unknown> = {}, opts: Partial<SourceOptions> = {}) =>
    openTableSource(
      table({
        name: 'rates',
        connector: 'http',
        url: `${base}${path}`,
        columns: [
          { name: 'code', type: 'string' },
          { name: 'rate', type: 'number' },
        ],
        ...extra,
      }),
      { dataDirs: [], httpAllowedHosts: ['127.0.0.1'], caFile: pki.clientZone.ca, ...opts },
    );

  it('fetches CSV and JSON over verified HTTPS', async () => {
    bodies.set('/rates.csv', { body: 'code,rate\nEUR,1\nUSD,1.08\n' });
    expect(await collect(http('/rates.csv'))).toEqual([
      ['EUR', 1],
      ['USD', 1.08],
    ]);
    bodies.set('/rates.json', {
      body: '[{"code":"EUR","rate":1},\n {"code":"USD","rate":"1.08","extra":{"a":[1,"]"]}}, {"code":null}]',
    });
    expect(await collect(http('/rates.json', { format: 'json' }))).toEqual([
      ['EUR', 1],
      ['USD', 1.08],
      [null, null],
    ]);
  });

  it('refuses other hosts, bad statuses, unknown certificates and bad values', async () => {
    expect(() => http('/rates.csv', {}, { httpAllowedHosts: ['localhost'] })).toThrow(
      expect.objectContaining({
        code: 'FORT_ERR_RELOAD_SOURCE',
        message: 'table "rates": host 127.0.0.1 is not in reloads.http_allowed_hosts',
      }),
    );
    const port = new URL(base).port;
    expect((await failure(collect(http('/missing')))).message).toBe(`table "rates": 127.0.0.1:${port} answered 404`);
    bodies.set('/moved', { status: 302, body: '' });
    expect((await failure(collect(http('/moved')))).message).toBe(
      `table "rates": 127.0.0.1:${port} answered 302 (redirects are not followed)`,
    );
    // Without caFile: Node's bundled roots, which do not know the test CA.
    const untrusted = openTableSource(
      table({
        name: 'rates',
        connector: 'http',
        url: `${base}/rates.csv`,
        columns: [{ name: 'code', type: 'string' }],
      }),
      { dataDirs: [], httpAllowedHosts: ['127.0.0.1'] },
    );
    expect((await failure(collect(untrusted))).message).toMatch(
      new RegExp(
        `^table "rates": GET 127\\.0\\.0\\.1:${port} failed \\((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\\)$`,
      ),
    );
    bodies.set('/bad.json', { body: '[{"code":"EUR","rate":"SECRET"}]' });
    const err = await failure(collect(http('/bad.json', { format: 'json' })));
    expect(err.message).toBe('table "rates": row 1, column "rate": expected a finite number');
    bodies.set('/notarray.json', { body: '{"code":"EUR"}' });
    expect((await failure(collect(http('/notarray.json', { format: 'json' })))).message).toBe(
      'table "rates": malformed JSON: expected a JSON array of objects',
    );
  });

  it('caps the body size', async () => {
    const body = `code,rate\n${'EUR,1\n'.repeat(10_000)}`;
    bodies.set('/huge.csv', { body });
    bodies.set('/huge-chunked.csv', { body });
    const capped = (maxBodyBytes: number, path = '/huge.csv') =>
      httpSource({
        table: 'rates',
        url: `${base}${path}`,
        format: 'csv',
        columns: [
          { name: 'code', type: 'string' },
          { name: 'rate', type: 'number' },
        ],
        delimiter: ',',
        quote: '"',
        httpAllowedHosts: ['127.0.0.1'],
        caFile: pki.clientZone.ca,
        maxBodyBytes,
      });
    expect(await collect(capped(100_000))).toHaveLength(10_000);
    expect((await failure(collect(capped(1000)))).message).toBe(
      'table "rates": the response body is larger than 1000 bytes',
    );
    expect(await collect(capped(100_000, '/huge-chunked.csv'))).toHaveLength(10_000);
    expect((await failure(collect(capped(5000, '/huge-chunked.csv')))).message).toBe(
      'table "rates": the response body is larger than 5000 bytes',
    );
  });
});

describe('JSON array splitter', () => {
  it('splits elements across any chunking, strings with brackets and escapes included', () => {
    const text = ' [ {"a":"x]}\\"{"} , {"b":[1,{"c":2}]},{"d":"\\\\"} ] ';
    const expected = ['{"a":"x]}\\"{"}', '{"b":[1,{"c":2}]}', '{"d":"\\\\"}'];
    for (const size of [1, 2, 5, text.length]) {
      const s = new JsonArraySplitter();
      const out: string[] = [];
      for (let i = 0; i < text.length; i += size) out.push(...s.push(text.slice(i, i + size)));
      s.end();
      expect(out).toEqual(expected);
      expect(out.map((t) => JSON.parse(t))).toEqual([{ a: 'x]}"{' }, { b: [1, { c: 2 }] }, { d: '\\' }]);
    }
  });

  it('refuses what is not an array of objects', () => {
    for (const [text, message] of [
      ['[1]', 'row 1 is not a JSON object'],
      ['[{},]', 'a "," without an element after row 1'],
      ['[{} {}]', 'expected "," or "]" after row 1'],
      ['[{}] x', 'data after the end of the JSON array'],
    ] as const) {
      expect(() => new JsonArraySplitter().push(text), text).toThrow(message);
    }
    const open = new JsonArraySplitter();
    open.push('[{"a":1}');
    expect(() => open.end()).toThrow('the JSON array is not closed before the end of the body');
  });
});
