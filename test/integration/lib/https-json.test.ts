import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Agent, createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createJsonClient } from '../../../lib/https-json.js';
import { FortError } from '../../../lib/errors.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { testPki } from '../../helpers/fort.js';

/** The small JSON client every outbound HTTPS link uses, against a real TLS server. */
describe('JSON over HTTPS client', () => {
  let pki: PkiPaths;
  let server: Server;
  let base: URL;
  const seen: { method: string; url: string; headers: Record<string, unknown>; body: string }[] = [];

  beforeAll(async () => {
    pki = await testPki();
    server = createServer(
      { cert: readFileSync(pki.cloudServer.devCloudCert), key: readFileSync(pki.cloudServer.devCloudKey) },
      (req, res) => {
        let body = '';
        req.setEncoding('utf8').on('data', (c: string) => (body += c));
        req.on('end', () => {
          seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
          if (req.url === '/json') return res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
          if (req.url === '/html') return res.writeHead(502).end('<html>secret-token-abc</html>');
          if (req.url === '/big') return res.writeHead(200).end('x'.repeat(4096));
          // Trickles a byte every 100 ms: never idle long enough for a socket timeout alone.
          const t = setInterval(() => res.write(' '), 100);
          res.on('close', () => clearInterval(t));
          res.writeHead(200);
        });
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = new URL(`https://localhost:${(server.address() as AddressInfo).port}`);
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const client = (over: { maxBodyBytes?: number; timeoutMs?: number; ca?: string } = {}) =>
    createJsonClient({
      agent: new Agent({ ca: readFileSync(over.ca ?? pki.cloudServer.ca) }),
      timeoutMs: over.timeoutMs ?? 2000,
      peer: 'test peer',
      errorCode: 'FORT_ERR_UPSTREAM',
      ...(over.maxBodyBytes ? { maxBodyBytes: over.maxBodyBytes } : {}),
    });

  it('sends JSON and reads JSON', async () => {
    const http = client();
    const res = await http.send(new URL('/json', base), { method: 'POST', body: { a: 1 }, headers: { 'x-test': 'y' } });
    expect(res.statusCode).toBe(200);
    expect(http.json(res)).toEqual({ ok: true });
    expect(seen.at(-1)).toMatchObject({
      method: 'POST',
      body: '{"a":1}',
      headers: expect.objectContaining({ 'content-type': 'application/json', 'x-test': 'y' }),
    });
  });

  it('names the status but never echoes a non-JSON body', async () => {
    const http = client();
    const res = await http.send(new URL('/html', base));
    let err: unknown;
    try {
      http.json(res);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FortError);
    expect((err as FortError).code).toBe('FORT_ERR_UPSTREAM');
    expect((err as Error).message).toBe('test peer: answered 502 with a non-JSON body');
  });

  it('refuses an oversized body', async () => {
    await expect(client({ maxBodyBytes: 1000 }).send(new URL('/big', base))).rejects.toThrow(
      'test peer: response body over 1000 bytes',
    );
  });

  it('gives up on a peer that trickles bytes, at the deadline for the whole exchange', async () => {
    const t0 = Date.now();
    await expect(client({ timeoutMs: 500 }).send(new URL('/slow', base))).rejects.toThrow(
      /test peer: unreachable: ETIMEDOUT no answer within 500 ms/,
    );
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('verifies the server certificate against the given CA only', async () => {
    await expect(client({ ca: pki.trustZone.ca }).send(new URL('/json', base))).rejects.toThrow(
      /test peer: unreachable: .*(UNABLE_TO_VERIFY|self.signed|unable to verify)/i,
    );
  });
});
