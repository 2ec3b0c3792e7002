import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readPrivateKeyFile, writeSecretFile } from '../../lib/files.js';
import { ConfigError } from '../../lib/errors.js';

export type AuthKeyType = 'ed25519' | 'ecdsa-p256' | 'rsa3072';

export interface AuthKey {
  type: AuthKeyType;
  /** SPKI PEM, as `auth_requests` sends it. */
  publicPem: string;
  /** `X-MEN-Signature`: base64 signature over exactly these bytes. */
  sign(body: Buffer): string;
}

/**
 * The device's Mender auth key: loaded from a 0600 PEM, or generated there on first start
 * (the Mender client does the same). Ed25519, ECDSA P-256 (DER signatures) or RSA 3072
 * (PKCS#1 v1.5 SHA-256), as PROTOCOLS.md lists.
 */
export function loadOrCreateAuthKey(file: string, generate: AuthKeyType = 'ed25519'): AuthKey {
  if (!existsSync(file)) {
    const pair =
      generate === 'ed25519'
        ? generateKeyPairSync('ed25519')
        : generate === 'ecdsa-p256'
          ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
          : generateKeyPairSync('rsa', { modulusLength: 3072 });
    writeSecretFile(file, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  }
  const key = readPrivateKeyFile(file, 'Mender auth key');
  const type = keyType(key, file);
  const publicPem = createPublicKey(key).export({ type: 'spki', format: 'pem' }) as string;
  return {
    type,
    publicPem,
    sign: (body) =>
      sign(
        type === 'ed25519' ? null : 'sha256',
        body,
        type === 'ecdsa-p256' ? { key, dsaEncoding: 'der' } : key,
      ).toString('base64'),
  };
}

function keyType(key: KeyObject, file: string): AuthKeyType {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256';
  if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 3072) return 'rsa3072';
  throw new ConfigError(file, [
    `expected an Ed25519, P-256 or RSA (≥ 3072 bits) private key, got ${key.asymmetricKeyType} ${key.asymmetricKeyDetails?.namedCurve ?? key.asymmetricKeyDetails?.modulusLength ?? ''}`.trim(),
  ]);
}
