import { describe, it, expect } from 'vitest';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { verifiedCsrKey } from '../../../../dev-cloud/pairing/csr.js';
import { issueDeviceCert, loadDeviceCa } from '../../../../dev-cloud/pairing/device-ca.js';
import { PairingRequestRefused } from '../../../../dev-cloud/pairing/registry.js';
import { createCa, createCsr } from '../../../../lib/pki/certs.js';
import { x509 } from '../../../../lib/pki/x509.js';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

// The requests are the fort's own (lib/pki/certs.ts createCsr): the dev cloud's independent check
// must accept what the fort sends, and refuse what a cloud would refuse.
describe("dev cloud: certificates for a fort's signing request (the key stays with the fort)", () => {
  it('certifies the requested key, names whom the cloud decides, and chains to its device CA', async () => {
    const created = await createCa({ commonName: 'Dev device CA' });
    const ca = await loadDeviceCa(created.certPem, created.keyPem);
    const { keyPem, csrPem } = await createCsr('asked-for-this-name');
    const cert = await issueDeviceCert(ca, await verifiedCsrKey(csrPem), {
      commonName: 'fort-7f3a',
      validMs: 30 * 86_400_000,
    });
    const leaf = new X509Certificate(cert.toString('pem'));
    expect(leaf.subject).toBe('CN=fort-7f3a');
    expect(leaf.checkIssued(new X509Certificate(created.certPem))).toBe(true);
    expect(leaf.verify(new X509Certificate(created.certPem).publicKey)).toBe(true);
    expect(leaf.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    expect(leaf.keyUsage).toEqual([CLIENT_AUTH]);
    expect(leaf.ca).toBe(false);
    const days = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 86_400_000;
    expect(Math.round(days)).toBe(30);
    expect(Date.parse(leaf.validFrom)).toBeLessThan(Date.now());
  });

  it('refuses a request whose signature does not match its key, a non-PEM text and an RSA key (400, as PairingRequestRefused)', async () => {
    const { csrPem } = await createCsr('fort-honest');
    // The signed body altered (the name it asks for): its signature no longer matches.
    const der = Buffer.from(new x509.Pkcs10CertificateRequest(csrPem).rawData);
    const at = der.indexOf('fort-honest');
    expect(at).toBeGreaterThan(0);
    der.write('fort-forged', at);
    const forged = x509.PemConverter.encode(new Uint8Array(der).buffer, 'CERTIFICATE REQUEST');
    await expect(verifiedCsrKey(forged)).rejects.toThrow(/not signed by its own key/);
    await expect(verifiedCsrKey('hello')).rejects.toBeInstanceOf(PairingRequestRefused);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaKeys = {
      privateKey: await x509.cryptoProvider
        .get()
        .subtle.importKey(
          'pkcs8',
          rsa.privateKey.export({ type: 'pkcs8', format: 'der' }),
          { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
          true,
          ['sign'],
        ),
      publicKey: await x509.cryptoProvider
        .get()
        .subtle.importKey(
          'spki',
          rsa.publicKey.export({ type: 'spki', format: 'der' }),
          { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
          true,
          ['verify'],
        ),
    };
    const rsaCsr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=fort',
      keys: rsaKeys,
      signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    });
    await expect(verifiedCsrKey(rsaCsr.toString('pem'))).rejects.toThrow(/not an EC P-256 key/);
  });
});
