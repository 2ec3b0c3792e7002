import { describe, it, expect } from 'vitest';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { createCa, createCsr, CsrRefusedError, issueCertForCsr, loadCa } from '../../../lib/pki/certs.js';
import { x509 } from '../../../lib/pki/x509.js';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

describe('certificates for a signing request (the key stays with the holder)', () => {
  it('signs the requested key, names whom the CA decides, and chains to the loaded CA', async () => {
    const created = await createCa({ commonName: 'Dev device CA' });
    const ca = await loadCa(created.certPem, created.keyPem);
    const { keyPem, csrPem } = await createCsr('asked-for-this-name');
    const cert = await issueCertForCsr(ca, csrPem, { commonName: 'fort-7f3a', usage: 'client' });
    const leaf = new X509Certificate(cert.toString('pem'));
    expect(leaf.subject).toBe('CN=fort-7f3a');
    expect(leaf.checkIssued(new X509Certificate(created.certPem))).toBe(true);
    expect(leaf.verify(new X509Certificate(created.certPem).publicKey)).toBe(true);
    expect(leaf.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    expect(leaf.keyUsage).toEqual([CLIENT_AUTH]);
  });

  it('refuses a request whose signature does not match its key, a non-PEM text and an RSA key', async () => {
    const ca = await createCa({ commonName: 'Dev device CA' });
    const { csrPem } = await createCsr('fort-honest');
    // The signed body altered (the name it asks for): its signature no longer matches.
    const der = Buffer.from(new x509.Pkcs10CertificateRequest(csrPem).rawData);
    const at = der.indexOf('fort-honest');
    expect(at).toBeGreaterThan(0);
    der.write('fort-forged', at);
    const forged = x509.PemConverter.encode(new Uint8Array(der).buffer, 'CERTIFICATE REQUEST');
    await expect(issueCertForCsr(ca, forged, { commonName: 'x', usage: 'client' })).rejects.toThrow(/not signed by its own key/);
    await expect(issueCertForCsr(ca, 'hello', { commonName: 'x', usage: 'client' })).rejects.toBeInstanceOf(CsrRefusedError);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaKeys = {
      privateKey: await x509.cryptoProvider.get().subtle.importKey('pkcs8', rsa.privateKey.export({ type: 'pkcs8', format: 'der' }), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['sign']),
      publicKey: await x509.cryptoProvider.get().subtle.importKey('spki', rsa.publicKey.export({ type: 'spki', format: 'der' }), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['verify']),
    };
    const rsaCsr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=fort', keys: rsaKeys, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } });
    await expect(issueCertForCsr(ca, rsaCsr.toString('pem'), { commonName: 'x', usage: 'client' })).rejects.toThrow(/not an EC P-256 key/);
  });
});
