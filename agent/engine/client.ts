import { Agent } from 'node:https';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { FortError, isFortErrorCode } from '../../lib/errors.js';
import { createJsonClient, replaceableAgent, type JsonResponse } from '../../lib/https-json.js';
import { commonName, type TlsMaterial } from '../../lib/tls.js';
import type { LogLevelView, TemporaryLevel } from '../../lib/log-level.js';

/** A table of a version as the engine describes it. */
export interface EngineTable {
  name: string;
  rows: number;
  fields: { name: string; type: string; kind: string }[];
}

/** What the agent asks the engine to load (engine/loads.ts `loadRequestSchema`). */
export type EngineLoadTable =
  | {
      name: string;
      connector: 'csv';
      file: string;
      delimiter: string;
      quote: string;
      header: boolean;
      columns: { name: string; type: string }[];
    }
  | { name: string; connector: 'sqlite'; database: string; query: string }
  | {
      name: string;
      /** Rows the agent reads (an HTTP source: the engine has no network) and streams in the load request. */
      connector: 'rows';
      columns: { name: string; type: string }[];
      /** Asked again on every attempt: a retried load fetches its source again. */
      batches: (signal: AbortSignal) => AsyncIterable<unknown[][]>;
    };

/** An engine answer passed on as it came (status, JSON text): the agent does not parse what it only relays. */
export interface RelayedAnswer {
  statusCode: number;
  contentType: string;
  text: string;
}

export interface EngineClientOptions {
  url: string;
  tls: TlsMaterial;
  /** Common name the engine's certificate must carry. */
  serverName: string;
  queryTimeoutMs: number;
  maxAnswerBytes: number;
}

/**
 * A streamed load (engine/load/rows-table.ts): the load request on the first line, then for each
 * `rows` table in order its rows as JSON arrays, one per line, and `{"end": <table>, "rows": n}`.
 */
async function* loadStream(spec: unknown, tables: EngineLoadTable[], signal: AbortSignal): AsyncGenerator<string> {
  yield `${JSON.stringify(spec)}\n`;
  for (const t of tables) {
    if (t.connector !== 'rows') continue;
    let rows = 0;
    for await (const batch of t.batches(signal)) {
      if (batch.length === 0) continue;
      rows += batch.length;
      yield `${batch.map((r) => JSON.stringify(r)).join('\n')}\n`;
    }
    yield `${JSON.stringify({ end: t.name, rows })}\n`;
  }
}

const path = (...parts: string[]) => parts.map(encodeURIComponent).join('/');

/**
 * The agent's side of the agent ↔ engine link: trust-zone mTLS, and the engine must present a
 * certificate of the installation's root named `serverName` (a certificate of another member of
 * the trust zone, e.g. a stolen fortctl one, is refused like one of another CA).
 */
export function createEngineClient(o: EngineClientOptions) {
  const base = new URL(o.url);
  const agents = replaceableAgent(({ ca, cert, key }: TlsMaterial) => {
    if (!ca)
      throw new FortError('FORT_ERR_TLS_MATERIAL', 'the engine client needs the trust-zone CA to verify the engine');
    return new Agent({
      ca,
      cert,
      key,
      keepAlive: true,
      maxSockets: 32,
      checkServerIdentity: (host: string, peer: PeerCertificate) => {
        const err = checkServerIdentity(host, peer);
        if (err) return err;
        const name = commonName(peer.subject);
        return name === o.serverName
          ? undefined
          : new Error(`the engine presented the certificate of ${name ?? 'no name'}, not ${o.serverName}`);
      },
    });
  }, o.tls);
  const http = createJsonClient({
    agent: agents.get,
    timeoutMs: o.queryTimeoutMs,
    peer: `fort-engine ${o.url}`,
    errorCode: 'FORT_ERR_ENGINE_UNAVAILABLE',
    maxBodyBytes: o.maxAnswerBytes,
  });
  const url = (p: string) => new URL(`/engine/v1/${p}`, base);
  const relay = (res: JsonResponse): RelayedAnswer => ({
    statusCode: res.statusCode,
    contentType: String(res.headers['content-type'] ?? 'application/json; charset=utf-8'),
    text: res.text,
  });
  /** One of the questions about a table of a version (a spec in, the engine's answer relayed). */
  const tableQuestion =
    (what: 'query' | 'fields' | 'rows') =>
    async (app: string, version: string, table: string, spec: unknown): Promise<RelayedAnswer> => {
      const p = path('apps', app, 'versions', version, 'tables', table);
      return relay(await http.send(url(`${p}/${what}`), { method: 'POST', body: spec }));
    };
  /** A JSON answer the agent needs itself; an engine refusal becomes a FortError with the engine's code. */
  const expect = <T>(res: JsonResponse, ok: number): T => {
    const body = http.json<T & { code?: string; detail?: string }>(res);
    if (res.statusCode === ok) return body;
    throw new FortError(
      isFortErrorCode(body.code) ? body.code : 'FORT_ERR_ENGINE_UNAVAILABLE',
      body.detail ?? `fort-engine answered ${res.statusCode}`,
      { fatal: false },
    );
  };

  return {
    health: async () => expect<{ status: string; version: string }>(await http.send(url('health')), 200),
    /** Loads a new version; aborting `signal` closes the request, which cancels the load in the engine. */
    async load(
      app: string,
      version: string,
      tables: EngineLoadTable[],
      timeoutMs: number,
      signal: AbortSignal,
    ): Promise<{ version: string; tables: { name: string; rows: number }[] }> {
      const streamed = tables.some((t) => t.connector === 'rows');
      const spec = { version, tables: tables.map((t) => (t.connector === 'rows' ? { ...t, batches: undefined } : t)) };
      const res = await http.send(url(`${path('apps', app)}/versions`), {
        method: 'POST',
        ...(streamed
          ? { stream: loadStream(spec, tables, signal), headers: { 'content-type': 'application/x-ndjson' } }
          : { body: spec }),
        timeoutMs,
        signal,
      });
      return expect(res, 201);
    },
    async tables(app: string, version: string): Promise<{ version: string; tables: EngineTable[] }> {
      return expect(await http.send(url(`${path('apps', app, 'versions', version)}/tables`)), 200);
    },
    query: tableQuestion('query'),
    fields: tableQuestion('fields'),
    rows: tableQuestion('rows'),
    /** The app's complete versions in the engine (what it would serve if asked). */
    async versions(app: string): Promise<string[]> {
      return expect<{ versions: string[] }>(await http.send(url(`${path('apps', app)}/versions`)), 200).versions;
    },
    /** fort-engine's log level for a while (`fortctl log-level --service engine`). */
    setLogLevel: async (level: string, forSeconds: number): Promise<TemporaryLevel> =>
      expect(await http.send(url('log-level'), { method: 'PUT', body: { level, for_seconds: forSeconds } }), 200),
    logLevel: async (): Promise<LogLevelView> => expect(await http.send(url('log-level')), 200),
    /** 404 counts as done: deleting is idempotent. */
    async deleteVersion(app: string, version: string): Promise<void> {
      const res = await http.send(url(path('apps', app, 'versions', version)), { method: 'DELETE' });
      if (res.statusCode !== 204 && res.statusCode !== 404) expect(res, 204);
    },
    /** The agent's renewed client certificate (reload-certs, SIGHUP): used from the next request on. */
    reloadTls: (tls: TlsMaterial) => agents.replace(tls),
    close: () => agents.destroy(),
  };
}
export type EngineClient = ReturnType<typeof createEngineClient>;
