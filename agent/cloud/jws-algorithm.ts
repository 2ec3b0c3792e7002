import type { KeyObject } from 'node:crypto';

export type SigningAlgorithm = 'ES256' | 'EdDSA';

/**
 * The one JWS algorithm a key may sign with, from the key itself and never from a token
 * header (RFC 8725 §3.1): P-256 → ES256, Ed25519 → EdDSA; anything else → undefined. The
 * fort (signing its client assertions) and the cloud (verifying them) must agree on this; the
 * dev cloud decides on its own (dev-cloud/cloud-api/jws-algorithm.ts) and a test compares them.
 */
export function jwsAlgorithmFor(key: KeyObject): SigningAlgorithm | undefined {
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  return undefined;
}
