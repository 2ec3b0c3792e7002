import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import { FortError } from '../../../lib/errors.js';
import { proxyAgentFor, type ProxySettings } from '../../../lib/proxy.js';
import { badValue, converterFor, csvBatches } from './csv.js';
import type { ColumnSpec, ColumnType, TableSource } from './types.js';
import { BATCH_ROWS, cancelled, rowsOf, sourceError } from './types.js';

/** A body larger than this is refused: a wrong URL must not fill the disk or memory. */
export const MAX_BODY_BYTES = 256 * 1024 * 1024;
/** No byte from the server for this long (connecting, waiting for headers, mid-body): given up. */
export const IDLE_TIMEOUT_MS = 60_000;
/** One JSON element (row) at most; larger is refused before it is parsed. */
const MAX_ELEMENT_CHARS = 16 * 1024 * 1024;

/** A host name or IP as `reloads.http_allowed_hosts` lists it: lower case, no brackets, no trailing dot. */
const bare = (h: string) =>
  h
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '');

/** Exact match (case-insensitive), any port: the list names hosts, not origins. */
export function hostAllowed(url: URL, allowedHosts: string[]): boolean {
  const host = bare(url.hostname);
  return allowedHosts.some((h) => bare(h) === host);
}

export interface HttpSourceOptions {
  table: string;
  url: string;
  format: 'csv' | 'json';
  columns: ColumnSpec[];
  delimiter: string;
  quote: string;
  httpAllowedHosts: string[];
  proxy?: ProxySettings;
  /** PEM bundle the server certificate must chain to; default: Node's bundled roots. */
  caFile?: string;
  idleTimeoutMs?: number;
  maxBodyBytes?: number;
}

/** GET with certificate verification on; redirects are not followed (they could leave the allowed hosts). */
function get(url: URL, opts: HttpSourceOptions, signal: AbortSignal): Promise<IncomingMessage> {
  const ca = opts.caFile === undefined ? undefined : readFileSync(opts.caFile);
  const agent = proxyAgentFor(url, opts.proxy, ca === undefined ? {} : { ca });
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        signal,
        ...(agent ? { agent } : {}),
        ...(ca ? { ca } : {}),
        headers: { accept: opts.format === 'json' ? 'application/json' : 'text/csv, text/plain, */*' },
      },
      resolve,
    );
    req.setTimeout(opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS, () =>
      req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })),
    );
    req.on('error', reject);
    req.end();
  });
}

/** The body as text chunks, at most `max` bytes; multi-byte characters cut by a chunk boundary are kept whole. */
async function* bodyText(res: IncomingMessage, max: number, table: string): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let size = 0;
  try {
    for await (const buf of res as AsyncIterable<Buffer>) {
      size += buf.length;
      if (size > max) throw sourceError(table, `the response body is larger than ${max} bytes`);
      const text = decoder.write(buf);
      if (text) yield text;
    }
    const tail = decoder.end();
    if (tail) yield tail;
  } finally {
    res.destroy();
  }
}

/**
 * The elements of a top-level JSON array, as JSON text, without holding the whole body: a
 * scanner tracks strings and nesting, each complete element is handed out on its own.
 */
export class JsonArraySplitter {
  private state: 'start' | 'between' | 'element' | 'end' = 'start';
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Something was read since the last comma or the opening bracket. */
  private sawElement = false;
  private parts: string[] = [];
  private partsLen = 0;
  count = 0;

  push(chunk: string): string[] {
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (this.state === 'element') {
        if (this.inString) {
          if (this.escaped) this.escaped = false;
          else if (c === 92)
            this.escaped = true; // backslash
          else if (c === 34) this.inString = false;
          continue;
        }
        if (c === 34) this.inString = true;
        else if (c === 123 || c === 91) this.depth += 1;
        else if (c === 125 || c === 93) {
          this.depth -= 1;
          if (this.depth === 0) {
            this.parts.push(chunk.slice(start, i + 1));
            out.push(this.parts.join(''));
            this.parts = [];
            this.partsLen = 0;
            this.state = 'between';
            this.count += 1;
          }
        }
        continue;
      }
      if (c === 32 || c === 9 || c === 10 || c === 13 || (c === 0xfeff && this.state === 'start')) continue;
      if (this.state === 'start') {
        if (c !== 91) throw new SyntaxError('expected a JSON array of objects');
        this.state = 'between';
      } else if (this.state === 'between') {
        if (c === 93) {
          if (this.count > 0 && !this.sawElement)
            throw new SyntaxError(`a "," without an element after row ${this.count}`);
          this.state = 'end';
        } else if (c === 44) {
          if (!this.sawElement) throw new SyntaxError(`a "," without an element before it after row ${this.count}`);
          this.sawElement = false;
        } else if (this.sawElement) {
          throw new SyntaxError(`expected "," or "]" after row ${this.count}`);
        } else if (c === 123) {
          this.state = 'element';
          this.depth = 1;
          this.sawElement = true;
          start = i;
        } else {
          throw new SyntaxError(`row ${this.count + 1} is not a JSON object`);
        }
      } else {
        throw new SyntaxError('data after the end of the JSON array');
      }
    }
    if (this.state === 'element') {
      const piece = chunk.slice(start);
      this.parts.push(piece);
      this.partsLen += piece.length;
      if (this.partsLen > MAX_ELEMENT_CHARS)
        throw new SyntaxError(`row ${this.count + 1} is longer than ${MAX_ELEMENT_CHARS} characters`);
    }
    return out;
  }

  end(): void {
    if (this.state !== 'end') throw new SyntaxError('the JSON array is not closed before the end of the body');
  }
}

/** A JSON value → what SQLite stores, or undefined when it does not fit the column's type. */
function fromJson(v: unknown, type: ColumnType): unknown {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
      return v === '' ? null : converterFor(type)(v);
    case 'number':
      if (type === 'integer') return Number.isSafeInteger(v) ? v : undefined;
      if (type === 'number') return Number.isFinite(v) ? v : undefined;
      if (type === 'boolean') return v === 1 || v === 0 ? v : undefined;
      return type === 'string' ? String(v) : undefined;
    case 'boolean':
      if (type === 'boolean') return v ? 1 : 0;
      return type === 'string' ? String(v) : undefined;
    default:
      return undefined;
  }
}

/** Rows from a JSON array of objects: each declared column is the member of that name (missing = NULL). */
async function* jsonBatches(
  chunks: AsyncIterable<string>,
  table: string,
  columns: ColumnSpec[],
  signal: AbortSignal,
): AsyncGenerator<unknown[][]> {
  const splitter = new JsonArraySplitter();
  let row = 0;
  let batch: unknown[][] = [];
  try {
    for await (const chunk of chunks) {
      if (signal.aborted) throw cancelled(table);
      for (const text of splitter.push(chunk)) {
        row += 1;
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(text) as Record<string, unknown>;
        } catch {
          // JSON.parse's message quotes the text: never passed on.
          throw sourceError(table, `row ${row} is not valid JSON`);
        }
        const out = new Array<unknown>(columns.length);
        for (let c = 0; c < columns.length; c++) {
          const col = columns[c]!;
          const v = fromJson(Object.hasOwn(obj, col.name) ? obj[col.name] : null, col.type);
          if (v === undefined) throw badValue(table, row, col);
          out[c] = v;
        }
        batch.push(out);
        if (batch.length === BATCH_ROWS) {
          yield batch;
          batch = [];
        }
      }
    }
    splitter.end();
    if (batch.length) yield batch;
  } catch (err) {
    if (err instanceof SyntaxError) throw sourceError(table, `malformed JSON: ${err.message}`);
    throw err;
  }
}

/** A CSV or JSON document fetched over HTTPS from an allowed host, parsed as it arrives. */
export function httpSource(opts: HttpSourceOptions): TableSource {
  const { table, columns } = opts;
  const url = new URL(opts.url);
  if (url.protocol !== 'https:') throw sourceError(table, 'only https:// URLs are fetched');
  if (!hostAllowed(url, opts.httpAllowedHosts))
    throw sourceError(table, `host ${url.hostname} is not in reloads.http_allowed_hosts`);
  async function* batches(signal: AbortSignal): AsyncGenerator<unknown[][]> {
    if (signal.aborted) throw cancelled(table);
    try {
      const res = await get(url, opts, signal);
      if (res.statusCode !== 200) {
        res.destroy();
        throw sourceError(
          table,
          `${url.host} answered ${res.statusCode}${res.statusCode && res.statusCode >= 300 && res.statusCode < 400 ? ' (redirects are not followed)' : ''}`,
        );
      }
      const max = opts.maxBodyBytes ?? MAX_BODY_BYTES;
      if (Number(res.headers['content-length']) > max) {
        res.destroy();
        throw sourceError(table, `the response body is larger than ${max} bytes`);
      }
      const text = bodyText(res, max, table);
      yield* opts.format === 'json'
        ? jsonBatches(text, table, columns, signal)
        : csvBatches(text, { table, columns, delimiter: opts.delimiter, quote: opts.quote }, signal);
    } catch (err) {
      if (err instanceof FortError) throw err;
      if (signal.aborted || (err as Error).name === 'AbortError') throw cancelled(table);
      // The host and the error code (ECONNREFUSED, a certificate failure, ...): no customer data.
      throw sourceError(table, `GET ${url.host} failed (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
    }
  }
  return { table, columns, batches, rows: (signal) => rowsOf(batches(signal)) };
}
