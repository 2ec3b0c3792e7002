import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createCa, issueCert, type KeyAndCert } from '../../../lib/pki/certs.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { httpsRequest } from '../../helpers/https.js';
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
    adminUrl = `https://127.0.0.1:${inst.layout.ports.admin}/admin/v1/health`;
    clientApiUrl = `https://127.0.0.1:${inst.layout.ports.clientApi}/health`;
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);

    const trustCa = await loadCa(pki.trustZone.ca, pki.trustZone.caKey);
    const clientCa = await loadCa(pki.clientZone.ca, pki.clientZone.caKey);
    // A rogue CA that copies the real root's subject name exactly.
    const rogueCa = await createCa({ commonName: new X509Certificate(read(pki.trustZone.ca)).subject.replace(/^CN=/, '') });
    expect(rogueCa.cert.subject).toBe(trustCa.cert.subject);
    extra['clientZoneFortctl'] = await issueCert(clientCa, { commonName: 'fortctl', usage: 'client' });
    extra['rogueFortctl'] = await issueCert(rogueCa, { commonName: 'fortctl', usage: 'client' });
    extra['expiredFortctl'] = await issueCert(trustCa, { commonName: 'fortctl', usage: 'client', notBefore: new Date(Date.now() - 3 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
    extra['serverOnlyFortctl'] = await issueCert(trustCa, { commonName: 'fortctl', usage: 'server' });
  });
  afterAll(async () => {
    await agent?.stop();
    inst?.cleanup();
  });

  const trust = () => read(pki.trustZone.ca);

  it('accepts the fortctl certificate and reports health', async () => {
    const res = await httpsRequest(adminUrl, { ca: trust(), cert: read(pki.trustZone.fortctlCert), key: read(pki.trustZone.fortctlKey) });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'healthy', live: true, ready: true, fortId: 'fort-test-1', version: '0.1.0' });
    expect(Object.keys(body['modules'] as object).sort()).toEqual(['admin-api', 'client-api', 'clock', 'pairing', 'store']);
  });

  it('accepts the deployment-manager certificate and reports the version', async () => {
    const res = await httpsRequest(adminUrl.replace('health', 'version'), { ca: trust(), cert: read(pki.trustZone.deploymentManagerCert), key: read(pki.trustZone.deploymentManagerKey) });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ version: '0.1.0', schemaVersion: MIGRATIONS.at(-1)!.version, fortId: 'fort-test-1', node: process.version });
  });

  const refusedHandshake = /certificate|ECONNRESET|EPIPE|socket hang up|alert/i;

  it('refuses a client without a certificate', async () => {
    await expect(httpsRequest(adminUrl, { ca: trust() })).rejects.toThrow(refusedHandshake);
  });

  it('refuses a certificate from the client-zone CA', async () => {
    const c = extra['clientZoneFortctl']!;
    await expect(httpsRequest(adminUrl, { ca: trust(), cert: c.certPem, key: c.keyPem })).rejects.toThrow(refusedHandshake);
  });

  it('refuses a certificate from a rogue CA with identical subject names', async () => {
    const c = extra['rogueFortctl']!;
    await expect(httpsRequest(adminUrl, { ca: trust(), cert: c.certPem, key: c.keyPem })).rejects.toThrow(refusedHandshake);
  });

  it('refuses an expired trust-zone certificate', async () => {
    const c = extra['expiredFortctl']!;
    await expect(httpsRequest(adminUrl, { ca: trust(), cert: c.certPem, key: c.keyPem })).rejects.toThrow(refusedHandshake);
  });

  it('refuses a trust-zone certificate not meant for client authentication', async () => {
    const c = extra['serverOnlyFortctl']!;
    await expect(httpsRequest(adminUrl, { ca: trust(), cert: c.certPem, key: c.keyPem })).rejects.toThrow(refusedHandshake);
  });

  it('answers 403 to a trust-zone member whose role is not allowed (the agent itself)', async () => {
    const res = await httpsRequest(adminUrl, { ca: trust(), cert: read(pki.trustZone.agentCert), key: read(pki.trustZone.agentKey) });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'FORT_ERR_FORBIDDEN', detail: 'trust-zone member agent is not allowed on the admin API' });
  });

  it('serves the admin API with the trust-zone chain only', async () => {
    await expect(
      httpsRequest(adminUrl, { ca: read(pki.clientZone.ca), cert: read(pki.trustZone.fortctlCert), key: read(pki.trustZone.fortctlKey) }),
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

  it('logs refusals without key material', () => {
    const refusals = agent.stdout.filter((l) => l.includes('admin request refused'));
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    expect(agent.stdout.join('\n')).not.toMatch(/PRIVATE KEY/);
  });
});
