import { describe, expect, it } from 'vitest';
import { createPrivateKey, createPublicKey, generateKeyPairSync, generateKeySync } from 'node:crypto';
import { jwsAlgorithmFor } from '../../../../agent/cloud/jws-algorithm.js';
import { acceptedAlgorithm } from '../../../../dev-cloud/cloud-api/jws-algorithm.js';

// The fort picks the algorithm it signs with, the cloud the one it accepts, each from the key
// and each with its own code (the dev cloud is an independent implementation): they must agree.
describe("JWS algorithm of a key: the fort's choice and the dev cloud's", () => {
  const keys = {
    'EC P-256': generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    'EC P-384': generateKeyPairSync('ec', { namedCurve: 'P-384' }),
    'EC secp256k1': generateKeyPairSync('ec', { namedCurve: 'secp256k1' }),
    Ed25519: generateKeyPairSync('ed25519'),
    Ed448: generateKeyPairSync('ed448'),
    X25519: generateKeyPairSync('x25519'),
    RSA: generateKeyPairSync('rsa', { modulusLength: 2048 }),
    DSA: generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 }),
  };
  const expected: Record<keyof typeof keys, string | undefined> = {
    'EC P-256': 'ES256',
    'EC P-384': undefined,
    'EC secp256k1': undefined,
    Ed25519: 'EdDSA',
    Ed448: undefined,
    X25519: undefined,
    RSA: undefined,
    DSA: undefined,
  };

  for (const [name, pair] of Object.entries(keys) as [keyof typeof keys, (typeof keys)[keyof typeof keys]][]) {
    it(`${name}: ${expected[name] ?? 'refused'} on both sides, for the private key the fort holds and the public key the cloud registers`, () => {
      const pub = createPublicKey(pair.publicKey.export({ type: 'spki', format: 'pem' }));
      const priv = createPrivateKey(pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
      expect(jwsAlgorithmFor(priv)).toBe(expected[name]);
      expect(acceptedAlgorithm(pub)).toBe(expected[name]);
    });
  }

  it('a secret key is no signing key for either', () => {
    const secret = generateKeySync('hmac', { length: 256 });
    expect(jwsAlgorithmFor(secret)).toBeUndefined();
    expect(acceptedAlgorithm(secret)).toBeUndefined();
  });
});
