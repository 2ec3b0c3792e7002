import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:https';
import { randomUUID } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { createCa, issueCert, type KeyAndCert } from '../../../lib/pki/certs.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { httpsRequest, type TlsClientOptions } from '../../helpers/https.js';
import { MIGRATIONS } from '../../../agent/store/migrations.js';
import { startAgent, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';

const read = (p: string) => readFileSync(p);

/** Loads a CA (cert + key) from PEM files so tests can issue extra certs from it. */
async function loadCa(certPath: string, keyPath: string): Promise<KeyAndCert> {
  const { x509, webcrypto } = await import('../../../lib/pki/x509.js');
  const cert = new x509.X509Certificate(readFileSync(certPath, 'utf8'));
  const alg = { name: 'ECDSA', namedCurve: 'P-256' };
  const der = x509.PemConverter.decodeFirst(readFileSync(keyPath, 'utf8'));
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, alg, true, ['sign']);
  const publicKey = await cert.publicKey.export(alg, ['verify']);
  return { cert, certPem: cert.toString('pem'), keyPem: '', keys: { privateKey, publicKey } };
}

describe('admin API: trust-zone mutual TLS only', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let agent: Supervised;
  let adminUrl: string;
  let clientApiUrl: string;
  const extra: Record<string, KeyAndCert> = {};

  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki);
    // A metrics scraper under its own name: an operator like fortctl (README: Metrics).
    const toml = readFileSync(inst.files.agent, 'utf8');
    writeFileSync(
      inst.files.agent,
      toml.replace(
        'allowed_clients = [ "fortctl", "deployment-manager" ]',
        'allowed_clients = [ "fortctl", "deployment-manager", "prometheus" ]',
      ),
    );
    expect(readFileSync(inst.files.agent, 'utf8')).toContain('"prometheus"');
    adminUrl = `https://127.0.0.1:${inst.layout.ports.admin}/admin/v1/health`;
    clientApiUrl = `https://127.0.0.1:${inst.layout.ports.clientApi}/health`;
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);

    const trustCa = await loadCa(pki.trustZone.ca, pki.trustZone.caKey);
    const clientCa = await loadCa(pki.clientZone.ca, pki.clientZone.caKey);
    // A rogue CA that copies the real root's subject name exactly.
    const rogueCa = await createCa({
      commonName: new X509Certificate(read(pki.trustZone.ca)).subject.replace(/^CN=/, ''),
    });
    expect(rogueCa.cert.subject).toBe(trustCa.cert.subject);
    extra['clientZoneFortctl'] = await issueCert(clientCa, { commonName: 'fortctl', usage: 'client' });
    extra['rogueFortctl'] = await issueCert(rogueCa, { commonName: 'fortctl', usage: 'client' });
    extra['expiredFortctl'] = await issueCert(trustCa, {
      commonName: 'fortctl',
      usage: 'client',
      notBefore: new Date(Date.now() - 3 * 86400_000),
      notAfter: new Date(Date.now() - 86400_000),
    });
    extra['serverOnlyFortctl'] = await issueCert(trustCa, { commonName: 'fortctl', usage: 'server' });
    extra['prometheus'] = await issueCert(trustCa, { commonName: 'prometheus', usage: 'client' });
  });
  afterAll(async () => {
    await agent?.stop();
    inst?.cleanup();
  });

  const trust = () => read(pki.trustZone.ca);

  it('accepts the fortctl certificate and reports health', async () => {
    const res = await httpsRequest(adminUrl, {
      ca: trust(),
      cert: read(pki.trustZone.fortctlCert),
      key: read(pki.trustZone.fortctlKey),
    });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'healthy', live: true, ready: true, fortId: 'fort-test-1', version: '0.1.0' });
    expect(Object.keys(body['modules'] as object).sort()).toEqual([
      'admin-api',
      'client-api',
      'clock',
      'disk',
      'pairing',
      'store',
    ]);
  });

  it('accepts the deployment-manager certificate and reports the version', async () => {
    const res = await httpsRequest(adminUrl.replace('health', 'version'), {
      ca: trust(),
      cert: read(pki.trustZone.deploymentManagerCert),
      key: read(pki.trustZone.deploymentManagerKey),
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({
      version: '0.1.0',
      schemaVersion: MIGRATIONS.at(-1)!.version,
      fortId: 'fort-test-1',
      node: process.version,
    });
  });

  const refusedHandshake = /certificate|ECONNRESET|EPIPE|socket hang up|alert/i;

  it('refuses a client without a certificate', async () => {
    await expect(httpsRequest(adminUrl, { ca: trust() })).rejects.toThrow(refusedHandshake);
  });

  it('refuses a certificate from the client-zone CA', async () => {
    const c = extra['clientZoneFortctl']!;
    await expect(httpsRequest(adminUrl, { ca: trust(), cert: c.certPem, key: c.keyPem })).rejects.toThrow(
      refusedHandshake,
    );
  });

  it('refuses a certificate from a rogue CA with identical subject names', async () => {
    const c = extra['rogueFortctl']!;
    await expect(httpsRequest(adminUrl, { ca: trust(), cert: c.certPem, key: c.keyPem })).rejects.toThrow(
      refusedHandshake,
    );
  });

  it('refuses an expired trust-zone certificate', async () => {
    const c = extra['expiredFortctl']!;
    await expect(httpsRequest(adminUrl, { ca: trust(), cert: c.certPem, key: c.keyPem })).rejects.toThrow(
      refusedHandshake,
    );
  });

  it('refuses a trust-zone certificate not meant for client authentication', async () => {
    const c = extra['serverOnlyFortctl']!;
    await expect(httpsRequest(adminUrl, { ca: trust(), cert: c.certPem, key: c.keyPem })).rejects.toThrow(
      refusedHandshake,
    );
  });

  it('answers 403 to a trust-zone member whose role is not allowed (the agent itself)', async () => {
    const res = await httpsRequest(adminUrl, {
      ca: trust(),
      cert: read(pki.trustZone.agentCert),
      key: read(pki.trustZone.agentKey),
    });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({
      code: 'FORT_ERR_FORBIDDEN',
      detail: 'trust-zone member agent is not allowed on the admin API',
    });
  });

  it('serves the admin API with the trust-zone chain only', async () => {
    await expect(
      httpsRequest(adminUrl, {
        ca: read(pki.clientZone.ca),
        cert: read(pki.trustZone.fortctlCert),
        key: read(pki.trustZone.fortctlKey),
      }),
    ).rejects.toThrow(/unable to verify|self.signed|UNABLE_TO_VERIFY/i);
  });

  it('serves the client API with the client-zone chain, never the trust zone', async () => {
    const res = await httpsRequest(clientApiUrl, { ca: read(pki.clientZone.ca) });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
    const clientCa = new X509Certificate(read(pki.clientZone.ca));
    expect(res.peer.issuer).toEqual(expect.objectContaining({ CN: clientCa.subject.replace(/^CN=/, '') }));
    expect(res.peer.issuerCertificate?.fingerprint256).toBe(clientCa.fingerprint256);
    expect(res.peer.fingerprint256).toBe(new X509Certificate(read(pki.clientZone.clientApiCert)).fingerprint256);
    await expect(httpsRequest(clientApiUrl, { ca: trust() })).rejects.toThrow(/unable to verify|UNABLE_TO_VERIFY/i);
  });

  describe('roles: each route declares who may call it', () => {
    const base = () => `https://127.0.0.1:${inst.layout.ports.admin}`;
    const dm = () => ({
      ca: trust(),
      cert: read(pki.trustZone.deploymentManagerCert),
      key: read(pki.trustZone.deploymentManagerKey),
    });
    const fortctl = () => ({ ca: trust(), cert: read(pki.trustZone.fortctlCert), key: read(pki.trustZone.fortctlKey) });
    // Refused before the route runs: none of these does anything, whatever it would do.
    const OPERATOR_ONLY: [string, string][] = [
      ['GET', '/admin/v1/update-state'],
      ['GET', '/admin/v1/metrics'],
      ['GET', '/admin/v1/certs'],
      ['GET', '/admin/v1/events/dead'],
      ['GET', '/admin/v1/audit?since=2024-01-01T00:00:00Z'],
      ['POST', '/admin/v1/apps'],
      ['GET', '/admin/v1/apps'],
      ['GET', '/admin/v1/reloads'],
      ['POST', '/admin/v1/reloads'],
      ['POST', `/admin/v1/reloads/${randomUUID()}/cancel`],
      ['POST', '/admin/v1/pair'],
      ['POST', '/admin/v1/unpair'],
      ['POST', '/admin/v1/rotate-keys'],
      ['POST', '/admin/v1/reload-certs'],
    ];
    const DM_ONLY: [string, string][] = [
      ['POST', '/admin/v1/update-identity'],
      ['PUT', '/admin/v1/update-state'],
    ];
    const send = (tls: TlsClientOptions, method: string, path: string) => httpsRequest(`${base()}${path}`, tls, method);

    it.each(OPERATOR_ONLY)('refuses the deployment manager on %s %s (operator only)', async (method, path) => {
      const res = await send(dm(), method, path);
      expect(res.status).toBe(403);
      expect(JSON.parse(res.body)).toMatchObject({
        code: 'FORT_ERR_FORBIDDEN',
        detail: expect.stringMatching(/is for operators \(fortctl\) only, not deployment-manager$/),
      });
    });

    it.each(DM_ONLY)('refuses fortctl on %s %s (deployment manager only)', async (method, path) => {
      const res = await send(fortctl(), method, path);
      expect(res.status).toBe(403);
      expect(JSON.parse(res.body)).toMatchObject({
        code: 'FORT_ERR_FORBIDDEN',
        detail: expect.stringMatching(/is for the deployment manager only, not fortctl$/),
      });
    });

    it('lets an operator read what operators read, and a scraper under its own name scrape metrics', async () => {
      for (const path of [
        '/admin/v1/apps',
        '/admin/v1/reloads',
        '/admin/v1/audit?since=2024-01-01T00:00:00Z',
        '/admin/v1/update-state',
        '/admin/v1/metrics',
      ]) {
        expect((await send(fortctl(), 'GET', path)).status, path).toBe(200);
      }
      const p = extra['prometheus']!;
      const scrape = await send({ ca: trust(), cert: p.certPem, key: p.keyPem }, 'GET', '/admin/v1/metrics');
      expect(scrape.status).toBe(200);
      expect(scrape.body).toMatch(/^# HELP /m);
    });

    it('answers 404 to an allowed peer on an unknown route', async () => {
      const res = await send(dm(), 'GET', '/admin/v1/nothing-here');
      expect(res.status).toBe(404);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'FORT_ERR_NOT_FOUND' });
    });
  });

  describe('body limits: app definitions up to 256 KiB, every refusal a problem', () => {
    /** A raw request as fortctl: any body, any content type. */
    const post = (method: string, path: string, body: string, contentType = 'application/json') =>
      new Promise<{ status: number; type: string | undefined; problem: Record<string, unknown> }>((resolve, reject) => {
        const req = request(
          `https://127.0.0.1:${inst.layout.ports.admin}${path}`,
          {
            method,
            ca: trust(),
            cert: read(pki.trustZone.fortctlCert),
            key: read(pki.trustZone.fortctlKey),
            agent: false,
            headers: { 'content-type': contentType },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                type: res.headers['content-type'],
                problem: text ? (JSON.parse(text) as Record<string, unknown>) : {},
              }),
            );
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    /** A valid TOML definition of about `bytes` bytes: one CSV table with many long column names (quotes to escape in JSON). */
    const wide = (bytes: number) => {
      const head =
        'id = "wide"\nname = "Wide"\nspace = "ops"\n[[tables]]\nname = "wide"\nconnector = "csv"\npath = "wide.csv"\ncolumns = [\n';
      const names: string[] = [];
      let size = head.length + 2;
      while (size < bytes) {
        const name = `c${String(names.length).padStart(4, '0')}_${'x'.repeat(120)}`;
        names.push(name);
        size += `  { name = "${name}", type = "string" },\n`.length;
      }
      return { names, toml: `${head}${names.map((n) => `  { name = "${n}", type = "string" },\n`).join('')}]\n` };
    };

    it('registers a 200 KiB definition (over the API-wide 64 KiB body limit once JSON-encoded)', async () => {
      const def = wide(200 * 1024);
      writeFileSync(join(inst.layout.sourcesDir!, 'wide.csv'), `${def.names.join(',')}\n`);
      const body = JSON.stringify({ format: 'toml', definition: def.toml });
      expect(body.length).toBeGreaterThan(205 * 1024);
      const res = await post('POST', '/admin/v1/apps', body);
      expect(res.problem).toMatchObject({ app: { id: 'wide', name: 'Wide', space: 'ops' }, created: true });
      expect(res.status).toBe(201);
    });

    it('refuses a 300 KiB definition with 413 problem+json naming the 256 KiB limit', async () => {
      const res = await post(
        'POST',
        '/admin/v1/apps',
        JSON.stringify({ format: 'toml', definition: wide(300 * 1024).toml }),
      );
      expect(res.status).toBe(413);
      expect(res.type).toBe('application/problem+json; charset=utf-8');
      expect(res.problem).toMatchObject({
        code: 'FORT_ERR_TOO_LARGE',
        detail: expect.stringMatching(
          /^definition: \d+ bytes; app definitions are limited to 262144 bytes \(256 KiB\)$/,
        ),
      });
    });

    it("refuses a body over the route's limit with 413 problem+json naming it", async () => {
      const res = await post(
        'POST',
        '/admin/v1/apps',
        JSON.stringify({ format: 'toml', definition: '\\'.repeat(300 * 1024) }),
      );
      expect(res.status).toBe(413);
      expect(res.type).toBe('application/problem+json; charset=utf-8');
      expect(res.problem).toMatchObject({
        code: 'FORT_ERR_TOO_LARGE',
        detail: `the body of POST /admin/v1/apps is limited to ${2 * 256 * 1024 + 4096} bytes`,
      });
    });

    it('names the API-wide 64 KiB limit on other routes', async () => {
      const res = await post('POST', '/admin/v1/reloads', JSON.stringify({ appId: 'x'.repeat(70 * 1024) }));
      expect(res.status).toBe(413);
      expect(res.problem).toMatchObject({
        code: 'FORT_ERR_TOO_LARGE',
        detail: 'the body of POST /admin/v1/reloads is limited to 65536 bytes',
      });
    });

    it('answers bad JSON and an unsupported content type with a problem', async () => {
      const bad = await post('POST', '/admin/v1/apps', '{"format": "toml", ');
      expect(bad.status).toBe(400);
      expect(bad.type).toBe('application/problem+json; charset=utf-8');
      expect(bad.problem).toMatchObject({
        code: 'FORT_ERR_BAD_REQUEST',
        detail: expect.stringMatching(/not valid JSON/),
      });
      const xml = await post('POST', '/admin/v1/apps', '<app/>', 'application/xml');
      expect(xml.status).toBe(415);
      expect(xml.type).toBe('application/problem+json; charset=utf-8');
      expect(xml.problem).toMatchObject({
        code: 'FORT_ERR_BAD_REQUEST',
        detail: expect.stringMatching(/application\/xml/),
      });
    });
  });

  it('logs refusals without key material', () => {
    const refusals = agent.stdout.filter((l) => l.includes('admin request refused'));
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    expect(agent.stdout.join('\n')).not.toMatch(/PRIVATE KEY/);
  });
});
