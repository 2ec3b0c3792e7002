import type { KeyObject } from 'node:crypto';

export type SigningAlgorithm = 'ES256' | 'EdDSA';

/**
 * The one JWS algorithm the cloud accepts from a registered key (RFC 8725 §3.1: from the key,
 * never from a token's header): an EC P-256 JWK → ES256, an Ed25519 OKP → EdDSA, anything else
 * → undefined. The cloud's own reading of the key, through its JWK rather than the fort's
 * key-type check (agent/cloud/jws-algorithm.ts), so a mistake in either one shows in the tests.
 */
export function acceptedAlgorithm(key: KeyObject): SigningAlgorithm | undefined {
  let jwk: { kty?: string; crv?: string };
  try {
    jwk = key.export({ format: 'jwk' });
  } catch {
    return undefined; // a key type JWK cannot express (DSA, DH, ...)
  }
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  return undefined;
}
