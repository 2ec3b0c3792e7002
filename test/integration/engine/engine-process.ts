import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import type { ClientRequest } from 'node:http';
import { join } from 'node:path';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { reservePort } from '../../../scripts/port-reservation.js';
import { startSupervised } from '../../../scripts/supervisor/process.js';
import { DIST, jsonLines } from '../../helpers/fort.js';
import { loadTlsMaterial } from '../../../lib/tls.js';
import { createEngineClient } from '../../../agent/engine/client.js';

/** fort-engine started as a process for a test file, and a trust-zone client of it (the agent by default). */

export interface Answer {
  status: number;
  /** The JSON answer; {} when it has no body (204). */
  body: Record<string, unknown>;
}

export interface Caller {
  cert: string;
  key: string;
  ca?: string;
}

export type LogLine = Record<string, unknown>;

export async function startEngine(o: { pki: PkiPaths; dir: string; sources: string; maxRows?: number }) {
  const port = await reservePort();
  const config = join(o.dir, 'engine.toml');
  const tz = o.pki.trustZone;
  writeFileSync(
    config,
    `[server]\nport = ${port.port}\n[server.tls]\nca = "${tz.ca}"\ncert = "${tz.engineCert}"\nkey = "${tz.engineKey}"\n` +
      `[data]\ndir = "${join(o.dir, 'data')}"\nsource_dirs = ["${o.sources}"]\n[queries]\nmemory_limit = "256MB"\nthreads = 1\n[log]\nlevel = "info"\n` +
      (o.maxRows ? `[loads]\nmax_rows = ${o.maxRows}\n` : ''),
  );
  const engine = await startSupervised({
    name: 'engine',
    script: join(DIST, 'engine/main.js'),
    args: ['--config', config],
  });
  try {
    await engine.waitReady(20_000);
  } catch (err) {
    await engine.stop();
    port.release();
    throw err;
  }
  const agent: Caller = { cert: tz.agentCert, key: tz.agentKey };

  /**
   * A request under way: `req` to abort it, `answer` once it is answered. `stream`: an
   * x-ndjson body the caller writes to `req` (and ends, or not).
   */
  function send(method: string, path: string, body?: unknown, who: Caller = agent, stream = false) {
    let req!: ClientRequest;
    const answer = new Promise<Answer>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const type = stream ? 'application/x-ndjson' : payload ? 'application/json' : undefined;
      req = request(
        `https://127.0.0.1:${port.port}${path}`,
        {
          method,
          ca: readFileSync(who.ca ?? tz.ca),
          cert: readFileSync(who.cert),
          key: readFileSync(who.key),
          agent: false,
          timeout: 30_000,
          headers: type ? { 'content-type': type } : {},
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }),
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      if (!stream) req.end(payload);
    });
    return { req, answer };
  }

  /**
   * The first line the engine logged from line `from` on that `match`es, waited for until the
   * deadline (the engine's own word that something happened, instead of a sleep).
   */
  function logged(match: (l: LogLine) => boolean, from = 0, timeoutMs = 20_000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const done = (line: LogLine | undefined, err?: Error) => {
        clearTimeout(timer);
        engine.events.off('stdout', onLine);
        if (line) resolve(line);
        else reject(err ?? new Error('no line'));
      };
      const onLine = (text: string) => {
        const line = jsonLines([text])[0];
        if (line && match(line)) done(line);
      };
      const timer = setTimeout(
        () => done(undefined, new Error(`no such engine log line within ${timeoutMs} ms`)),
        timeoutMs,
      );
      engine.events.on('stdout', onLine);
      const seen = jsonLines(engine.stdout.slice(from)).find(match);
      if (seen) done(seen);
    });
  }

  return {
    engine,
    send,
    /** A streamed load (x-ndjson) under way: write its lines to `req`. */
    sendStream: (path: string) => send('POST', path, undefined, agent, true),
    /** The agent's own engine client (agent/engine/client.ts), with the agent's certificate. */
    agentClient: () =>
      createEngineClient({
        url: `https://127.0.0.1:${port.port}`,
        tls: loadTlsMaterial({ ca: tz.ca, cert: tz.agentCert, key: tz.agentKey }),
        serverName: 'engine',
        queryTimeoutMs: 10_000,
        maxAnswerBytes: 1024 * 1024,
      }),
    call: (path: string, body: unknown, who: Caller = agent, method = 'POST') => send(method, path, body, who).answer,
    logged,
    /** The engine's log lines so far, parsed (from line `from` on). */
    lines: (from = 0) => jsonLines(engine.stdout.slice(from)),
    async stop() {
      await engine.stop();
      port.release();
    },
  };
}
export type EngineProcess = Awaited<ReturnType<typeof startEngine>>;
