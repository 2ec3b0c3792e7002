import type { webcrypto } from 'node:crypto';
import { x509 } from '../../lib/pki/x509.js';
import { PairingRequestRefused } from './registry.js';

/** The only device key type the dev cloud certifies, as a real cloud would fix one. */
export const DEVICE_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/**
 * The public key of a fort's PKCS#10 request, once the request proves possession of it (signed
 * by it) and the key is P-256. The dev cloud's own check, not the fort's helpers that made the
 * request: a request the fort gets wrong is refused here as a cloud would refuse it.
 * Throws PairingRequestRefused (400) otherwise.
 */
export async function verifiedCsrKey(csrPem: string): Promise<webcrypto.CryptoKey> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch {
    throw new PairingRequestRefused('not a PEM PKCS#10 certificate request');
  }
  const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (alg.name !== DEVICE_KEY.name || alg.namedCurve !== DEVICE_KEY.namedCurve)
    throw new PairingRequestRefused("the request's key is not an EC P-256 key");
  if (!(await csr.verify())) throw new PairingRequestRefused('the request is not signed by its own key');
  // @peculiar/x509 types CryptoKey as the DOM's, which this (non-DOM) build does not know
  return (await csr.publicKey.export(DEVICE_KEY, ['verify'])) as webcrypto.CryptoKey;
}
