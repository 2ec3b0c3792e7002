import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { PkiPaths } from '../../../../lib/pki/layout.js';
import { loadTlsMaterial } from '../../../../lib/tls.js';
import { createEngineClient } from '../../../../agent/engine/client.js';
import { testPki } from '../../../helpers/fort.js';

/**
 * The agent's side of the agent ↔ engine link refuses a rogue engine: a certificate of another
 * CA, and a certificate of this installation's root that is not the engine's (another trust-zone
 * member's, e.g. a stolen agent or fortctl key). Real TLS on loopback.
 */

let pki: PkiPaths;
let rogue: PkiPaths;
const servers: Server[] = [];

/** An HTTPS server on loopback presenting `cert`/`key`, answering health like the engine. */
async function server(cert: string, key: string, ca: string): Promise<string> {
  const s = createServer(
    { cert: readFileSync(cert), key: readFileSync(key), ca: readFileSync(ca), requestCert: true },
    (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ status: 'healthy', version: 'x' }));
    },
  );
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `https://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

const client = (url: string) =>
  createEngineClient({
    url,
    tls: loadTlsMaterial({ ca: pki.trustZone.ca, cert: pki.trustZone.agentCert, key: pki.trustZone.agentKey }),
    serverName: 'engine',
    queryTimeoutMs: 5000,
    maxAnswerBytes: 1024 * 1024,
  });

beforeAll(async () => {
  [pki, rogue] = await Promise.all([testPki(), testPki()]);
});
afterAll(() => {
  for (const s of servers) s.close();
});

describe('engine client (agent → fort-engine)', () => {
  it("talks to the installation's engine certificate", async () => {
    const c = client(await server(pki.trustZone.engineCert, pki.trustZone.engineKey, pki.trustZone.ca));
    try {
      expect(await c.health()).toEqual({ status: 'healthy', version: 'x' });
    } finally {
      c.close();
    }
  });

  it('refuses an engine whose certificate chains to another CA', async () => {
    const c = client(await server(rogue.trustZone.engineCert, rogue.trustZone.engineKey, pki.trustZone.ca));
    try {
      await expect(c.health()).rejects.toMatchObject({ code: 'FORT_ERR_ENGINE_UNAVAILABLE' });
    } finally {
      c.close();
    }
  });

  it("refuses another trust-zone member's certificate in the engine's place, naming it", async () => {
    const c = client(await server(pki.trustZone.agentCert, pki.trustZone.agentKey, pki.trustZone.ca));
    try {
      await expect(c.health()).rejects.toMatchObject({
        code: 'FORT_ERR_ENGINE_UNAVAILABLE',
        message: expect.stringMatching(/certificate of agent, not engine/),
      });
    } finally {
      c.close();
    }
  });
});
