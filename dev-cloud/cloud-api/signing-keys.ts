import { randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

export interface UserTokenClaims {
  user: string;
  tenant: string;
  /** The fort the token is for: its `aud`, so another fort of the tenant refuses it. */
  fort: string;
  ttlSeconds: number;
}

/** The `aud` of user tokens for a fort (CLOUD-API.md): each fort accepts only its own. */
export const fortAudience = (fortId: string) => `fort:${fortId}`;

export type RetireResult = 'retired' | 'unknown' | 'current';

/**
 * The user-token signing keys (ES256, in memory). Rotation adds a new current key and keeps
 * serving the old ones, so tokens already issued still verify until the key is retired.
 */
export async function createSigningKeys(opts: { issuer: string; now: () => Date }) {
  const keys: SigningKey[] = [];
  const generate = async (): Promise<SigningKey> => {
    // The private key never leaves WebCrypto; public keys are always exportable.
    const pair = await generateKeyPair('ES256');
    const kid = randomBytes(12).toString('base64url');
    return {
      kid,
      privateKey: pair.privateKey,
      jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256', use: 'sig' },
    };
  };
  keys.push(await generate());
  const current = () => keys[keys.length - 1]!;
  /** Public keys of someone else's issuer, served in the JWKS (tests: tokens forged with a known key). */
  const extra: JWK[] = [];

  return {
    currentKid: () => current().kid,
    jwks: () => ({ keys: [...keys.map((k) => k.jwk), ...extra] }),
    publishExtraKey(jwk: JWK): void {
      if (!jwk.kid || 'd' in jwk) throw new Error('an extra JWKS key needs a kid and must be public');
      extra.push(jwk);
    },
    async rotate(): Promise<string> {
      const k = await generate();
      keys.push(k);
      return k.kid;
    },
    retire(kid: string): RetireResult {
      const i = keys.findIndex((k) => k.kid === kid);
      if (i < 0) return 'unknown';
      if (keys[i] === current()) return 'current';
      keys.splice(i, 1);
      return 'retired';
    },
    /** A user token exactly as dev-cloud/CLOUD-API.md describes it. */
    async sign(c: UserTokenClaims): Promise<{ token: string; expiresAt: Date }> {
      const k = current();
      const iat = Math.floor(opts.now().getTime() / 1000);
      const exp = iat + c.ttlSeconds;
      const token = await new SignJWT({ tenant: c.tenant })
        .setProtectedHeader({ alg: 'ES256', kid: k.kid, typ: 'JWT' })
        .setIssuer(opts.issuer)
        .setAudience(fortAudience(c.fort))
        .setSubject(c.user)
        .setIssuedAt(iat)
        .setNotBefore(iat)
        .setExpirationTime(exp)
        .setJti(randomUUID())
        .sign(k.privateKey);
      return { token, expiresAt: new Date(exp * 1000) };
    },
  };
}
export type SigningKeys = Awaited<ReturnType<typeof createSigningKeys>>;
