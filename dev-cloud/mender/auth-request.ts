import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';

/** A parsed `POST /api/devices/v1/authentication/auth_requests` body. */
export interface AuthRequest {
  /** `id_data` as sent (a JSON string). */
  idData: string;
  /** The identity attributes, keys sorted: the device's identity. */
  identity: Record<string, unknown>;
  /** `id_data` re-serialised with sorted keys (two spellings of one identity are one device). */
  identityKey: string;
  /** The PEM as sent, and the key. */
  pubkey: string;
  key: KeyObject;
  /** SHA-256 of the key's SPKI DER, hex (one key, whatever its PEM spelling). */
  keyFingerprint: string;
  tenantToken: string;
}

export class AuthRequestError extends Error {
  constructor(
    readonly status: 400 | 401,
    message: string,
  ) {
    super(message);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function sortedJson(o: Record<string, unknown>): string {
  return JSON.stringify(
    Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, o[k]]),
    ),
  );
}

/** The public key of an auth request, if it is a kind Mender devices use (RSA, ECDSA P-256, Ed25519). */
function deviceKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new AuthRequestError(400, 'pubkey: not a PEM public key');
  }
  const type = key.asymmetricKeyType;
  if (type === 'rsa' || type === 'ed25519') return key;
  if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return key;
  throw new AuthRequestError(
    400,
    `pubkey: unsupported key type ${type}${type === 'ec' ? ` (${key.asymmetricKeyDetails?.namedCurve})` : ''}; expected RSA, ECDSA P-256 or Ed25519`,
  );
}

/**
 * Checks `X-MEN-Signature` (base64) over the exact raw body bytes with the key the body names:
 * RSA PKCS#1 v1.5 SHA-256, ECDSA P-256 SHA-256 (DER), or Ed25519.
 */
export function verifySignature(key: KeyObject, raw: Buffer, signatureB64: string): boolean {
  const sig = Buffer.from(signatureB64, 'base64');
  if (sig.length === 0) return false;
  try {
    if (key.asymmetricKeyType === 'ed25519') return verify(null, raw, key, sig);
    if (key.asymmetricKeyType === 'ec') return verify('sha256', raw, { key, dsaEncoding: 'der' }, sig);
    return verify('sha256', raw, key, sig);
  } catch {
    return false;
  }
}

/** Parses and checks an auth request: 400 for a malformed one, 401 for a bad or missing signature. */
export function parseAuthRequest(raw: Buffer, signature: string | string[] | undefined): AuthRequest {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new AuthRequestError(400, 'body: not JSON');
  }
  if (!isObject(body)) throw new AuthRequestError(400, 'body: expected a JSON object');
  const { id_data: idData, pubkey, tenant_token: tenantToken } = body;
  if (typeof idData !== 'string') throw new AuthRequestError(400, 'id_data: expected a JSON string');
  let identity: unknown;
  try {
    identity = JSON.parse(idData);
  } catch {
    throw new AuthRequestError(400, 'id_data: not JSON');
  }
  if (!isObject(identity) || Object.keys(identity).length === 0)
    throw new AuthRequestError(400, 'id_data: expected a non-empty JSON object');
  if (typeof pubkey !== 'string') throw new AuthRequestError(400, 'pubkey: expected a PEM string');
  if (tenantToken !== undefined && typeof tenantToken !== 'string')
    throw new AuthRequestError(400, 'tenant_token: expected a string');
  const key = deviceKey(pubkey);
  if (typeof signature !== 'string' || signature === '') throw new AuthRequestError(401, 'missing X-MEN-Signature');
  if (!verifySignature(key, raw, signature)) throw new AuthRequestError(401, 'signature verification failed');
  const identityKey = sortedJson(identity);
  return {
    idData,
    identity: JSON.parse(identityKey) as Record<string, unknown>,
    identityKey,
    pubkey,
    key,
    keyFingerprint: createHash('sha256')
      .update(key.export({ type: 'spki', format: 'der' }))
      .digest('hex'),
    tenantToken: tenantToken ?? '',
  };
}
