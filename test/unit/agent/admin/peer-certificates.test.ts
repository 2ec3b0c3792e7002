import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { duplexPair } from 'node:stream';
import { connect, type TLSSocket } from 'node:tls';
import { createCa, issueCert, loadCa } from '../../../../lib/pki/certs.js';
import type { PkiPaths } from '../../../../lib/pki/layout.js';
import { certificatePeer, type PeerDecision } from '../../../../agent/admin/peer.js';
import { adminApiRig, trustZonePki, type AdminApiRig } from '../../../helpers/admin-api.js';

/** A client's certificate and key (PEM), or none. */
type ClientCert = { cert: string; key: string } | undefined;

/**
 * The certificate-to-role mapping the agent runs in production: the admin API with its default
 * peer source (the TLS peer certificate), reached over a real TLS handshake on an in-memory
 * stream pair handed to its server as a connection. Verification stays on; nothing listens.
 */
describe('admin API: trust-zone certificates to roles (real TLS, in memory)', () => {
  let pki: PkiPaths;
  let rig: AdminApiRig;
  const certs: Record<string, ClientCert> = {};

  beforeAll(async () => {
    pki = await trustZonePki();
    const tz = pki.trustZone;
    const pem = (p: string) => readFileSync(p, 'utf8');
    rig = await adminApiRig(pki, { allowedClients: ['fortctl', 'deployment-manager', 'prometheus'] });
    const ca = await loadCa(pem(tz.ca), pem(tz.caKey));
    const issued = async (
      commonName: string,
      usage: 'client' | 'server',
      days?: { notBefore: Date; notAfter: Date },
    ) => {
      const c = await issueCert(ca, { commonName, usage, ...days });
      return { cert: c.certPem, key: c.keyPem };
    };
    const rogue = await createCa({ commonName: ca.cert.subject.replace(/^CN=/, '') });
    const rogueFortctl = await issueCert(rogue, { commonName: 'fortctl', usage: 'client' });
    Object.assign(certs, {
      fortctl: { cert: pem(tz.fortctlCert), key: pem(tz.fortctlKey) },
      'deployment-manager': { cert: pem(tz.deploymentManagerCert), key: pem(tz.deploymentManagerKey) },
      prometheus: await issued('prometheus', 'client'),
      agent: { cert: pem(tz.agentCert), key: pem(tz.agentKey) },
      'fortctl, server usage only': await issued('fortctl', 'server'),
      'fortctl, expired': await issued('fortctl', 'client', {
        notBefore: new Date(Date.now() - 3 * 86_400_000),
        notAfter: new Date(Date.now() - 86_400_000),
      }),
      'fortctl, from a rogue CA with the same name': { cert: rogueFortctl.certPem, key: rogueFortctl.keyPem },
      'no certificate': undefined,
    });
  });
  afterAll(() => rig?.close());

  /** One request over a fresh in-memory TLS connection: the status, or the handshake's refusal. */
  function call(client: ClientCert, method: string, path: string, body?: string): Promise<string> {
    const [serverEnd, clientEnd] = duplexPair();
    // A refused handshake destroys the server's end; the client must see its connection go.
    serverEnd.on('close', () => clientEnd.destroy());
    rig.app.server.emit('connection', serverEnd);
    return new Promise((resolve) => {
      const req = request(
        {
          method,
          path,
          headers: body ? { 'content-type': 'application/json' } : {},
          createConnection: () =>
            connect({ socket: clientEnd, ca: readFileSync(pki.trustZone.ca), servername: 'localhost', ...client }),
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(String(res.statusCode)));
        },
      );
      // The server drops the connection; the client sees it hang up (anything else shows as itself).
      req.on('error', (e: NodeJS.ErrnoException) =>
        resolve(e.code === 'ECONNRESET' ? 'refused in the handshake' : e.message),
      );
      req.end(body);
    });
  }

  it('gives each certificate its role, and refuses the rest', async () => {
    const got: Record<string, [string, string]> = {};
    for (const [name, client] of Object.entries(certs)) {
      // GET update-state is for operators only; POST update-identity for the deployment manager only (400: allowed, empty body).
      got[name] = [
        await call(client, 'GET', '/admin/v1/update-state'),
        await call(client, 'POST', '/admin/v1/update-identity', '{}'),
      ];
    }
    expect(got).toEqual({
      fortctl: ['200', '403'],
      'deployment-manager': ['403', '400'],
      prometheus: ['200', '403'],
      agent: ['403', '403'],
      'fortctl, server usage only': ['refused in the handshake', 'refused in the handshake'],
      'fortctl, expired': ['refused in the handshake', 'refused in the handshake'],
      'fortctl, from a rogue CA with the same name': ['refused in the handshake', 'refused in the handshake'],
      'no certificate': ['refused in the handshake', 'refused in the handshake'],
    });
  });

  it('reads the name and fingerprint from the verified certificate, and the routes act as that peer', async () => {
    const read: PeerDecision[] = [];
    const onSecure = (socket: TLSSocket) => void read.push(certificatePeer(socket));
    rig.app.server.on('secureConnection', onSecure);
    try {
      expect(await call(certs['fortctl'], 'POST', '/admin/v1/drain')).toBe('202');
      expect(await call(certs['deployment-manager'], 'POST', '/admin/v1/drain')).toBe('202');
    } finally {
      rig.app.server.off('secureConnection', onSecure);
    }
    const fingerprint = (p: string) => new X509Certificate(readFileSync(p)).fingerprint256;
    expect(read).toEqual([
      { ok: true, peer: { name: 'fortctl', fingerprint256: fingerprint(pki.trustZone.fortctlCert) } },
      {
        ok: true,
        peer: { name: 'deployment-manager', fingerprint256: fingerprint(pki.trustZone.deploymentManagerCert) },
      },
    ]);
    // Each drain is recorded with the caller's name once its answer is out (setImmediate).
    await vi.waitFor(() => expect(rig.drained).toEqual(['fortctl', 'deployment-manager']));
  });
});
