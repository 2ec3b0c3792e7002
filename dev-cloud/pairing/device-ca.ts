import { webcrypto } from 'node:crypto';
import { x509 } from '../../lib/pki/x509.js';
import { DEVICE_KEY } from './csr.js';

/** The dev cloud's device CA: it certifies the keys forts keep (client certificates only). */
export interface DeviceCa {
  cert: x509.X509Certificate;
  privateKey: webcrypto.CryptoKey;
  publicKey: webcrypto.CryptoKey;
}

const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** The CA from its PEM certificate and PKCS#8 P-256 key (scripts/pki.ts makes them for the dev stack). */
export async function loadDeviceCa(certPem: string, keyPem: string): Promise<DeviceCa> {
  const cert = new x509.X509Certificate(certPem);
  const privateKey: webcrypto.CryptoKey = await webcrypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(keyPem),
    DEVICE_KEY,
    false,
    ['sign'],
  );
  return { cert, privateKey, publicKey: (await cert.publicKey.export(DEVICE_KEY, ['verify'])) as webcrypto.CryptoKey };
}

/**
 * A client certificate naming `commonName` (the cloud decides whom it names, not the request)
 * for a key the fort keeps. Back-dated a minute so a peer with a slightly slow clock accepts it
 * at once; a random positive 128-bit serial (the registry revokes by serial).
 */
export async function issueDeviceCert(
  ca: DeviceCa,
  publicKey: webcrypto.CryptoKey,
  o: { commonName: string; validMs: number },
): Promise<x509.X509Certificate> {
  // Backdated for clock skew, by a minute (a tenth of a short-lived certificate's life at most).
  const notBefore = new Date(Date.now() - Math.min(60_000, o.validMs / 10));
  const serial = webcrypto.getRandomValues(new Uint8Array(16));
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  return x509.X509CertificateGenerator.create({
    serialNumber: Buffer.from(serial).toString('hex'),
    subject: [{ CN: [o.commonName] }],
    issuer: ca.cert.subjectName,
    notBefore,
    notAfter: new Date(notBefore.getTime() + o.validMs),
    publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
      await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ],
  });
}
