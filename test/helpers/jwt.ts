import { createHmac, createPublicKey, KeyObject, sign as cryptoSign } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

/** A user-token issuer for tests: its own ES256 key pair and JWKS, plus forgeries. */
export async function testIssuer(opts: { issuer: string; audience: string; tenant: string }) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = 'test-key-1';
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const now = () => Math.floor(Date.now() / 1000);

  const claims = (over: Record<string, unknown> = {}) => ({
    iss: opts.issuer,
    aud: opts.audience,
    sub: 'alice',
    tenant: opts.tenant,
    iat: now(),
    nbf: now(),
    exp: now() + 600,
    ...over,
  });
  /** A token from this issuer; `over` replaces or adds claims (e.g. exp in the past). */
  const sign = (
    over: Record<string, unknown> = {},
    header: Record<string, unknown> = {},
    key: Parameters<SignJWT['sign']>[0] = privateKey,
  ) => new SignJWT(claims(over)).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT', ...header }).sign(key);

  const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  // Signed by hand: jose (rightly) refuses to produce these, but an attacker's tool will.
  const rawSign = (headerJson: string, payload: Record<string, unknown>) => {
    const input = `${b64(headerJson)}.${b64(payload)}`;
    return `${input}.${cryptoSign('sha256', Buffer.from(input), { key: KeyObject.from(privateKey), dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
  const pem = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' }).export({
    type: 'spki',
    format: 'pem',
  }) as string;

  return {
    jwks: { keys: [jwk] },
    kid,
    sign,
    /** Every token a hostile client might send, each of which must be refused. */
    attacks: async (): Promise<Record<string, string>> => {
      const good = await sign();
      const other = await generateKeyPair('ES256');
      const [h, p] = good.split('.') as [string, string];
      const hs = `${b64({ alg: 'HS256', kid, typ: 'JWT' })}.${b64(claims())}`;
      return {
        'alg none': `${b64({ alg: 'none', kid, typ: 'JWT' })}.${b64(claims())}.`,
        'HS256 signed with the public key': `${hs}.${createHmac('sha256', pem).update(hs).digest('base64url')}`,
        'wrong key': await sign({}, {}, other.privateKey),
        expired: await sign({ exp: now() - 3600, iat: now() - 7200, nbf: now() - 7200 }),
        'nbf in the future': await sign({ nbf: now() + 3600 }),
        'wrong iss': await sign({ iss: 'https://evil.example' }),
        'wrong aud': await sign({ aud: 'other-api' }),
        'other tenant': await sign({ tenant: 'other-tenant' }),
        'unknown kid': await sign({}, { kid: 'no-such-key' }),
        oversized: await sign({ padding: 'x'.repeat(9000) }),
        truncated: good.slice(0, good.length - 20),
        'non-JSON header': `${b64('not json')}.${p}.${good.split('.')[2]}`,
        'duplicate header params': rawSign(`{"alg":"ES256","kid":"${kid}","kid":"other"}`, claims()),
        'critical header param': rawSign(
          JSON.stringify({ alg: 'ES256', kid, crit: ['exp-v2'], 'exp-v2': 1 }),
          claims(),
        ),
        'two segments': `${h}.${p}`,
      };
    },
  };
}

/** Why the fort must refuse each of `testIssuer(...).attacks()` (the verifier's TokenRejection). */
export const ATTACK_REASONS: Readonly<Record<string, string>> = {
  'alg none': 'alg_not_allowed',
  'HS256 signed with the public key': 'alg_not_allowed',
  'wrong key': 'bad_signature',
  expired: 'expired',
  'nbf in the future': 'not_yet_valid',
  'wrong iss': 'wrong_issuer',
  'wrong aud': 'wrong_audience',
  'other tenant': 'wrong_tenant',
  'unknown kid': 'unknown_kid',
  oversized: 'token_too_large',
  truncated: 'bad_signature',
  'non-JSON header': 'malformed',
  'duplicate header params': 'duplicate_header_param',
  'critical header param': 'crit_unsupported',
  'two segments': 'malformed',
};
