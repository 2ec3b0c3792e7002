import type { KeyObject } from 'node:crypto';
import { readPrivateKeyFile } from '../../lib/files.js';
import { ConfigError } from '../../lib/errors.js';
import { jwsAlgorithmFor, type SigningAlgorithm } from './jws-algorithm.js';

export interface ClientKey {
  key: KeyObject;
  alg: SigningAlgorithm;
}

/** The fort's assertion-signing key: a 0600 PEM (PKCS#8 or SEC1), P-256 or Ed25519. */
export function loadClientKey(file: string): ClientKey {
  const key = readPrivateKeyFile(file, 'cloud client key');
  const alg = jwsAlgorithmFor(key);
  if (alg) return { key, alg };
  throw new ConfigError(file, [
    `expected a P-256 or Ed25519 private key, got ${key.asymmetricKeyType ?? 'unknown'} ${key.asymmetricKeyDetails?.namedCurve ?? ''}`.trim(),
  ]);
}
