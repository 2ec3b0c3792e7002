import { createHmac, createSecretKey, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';

export const DEVICE_TOKEN_ISSUER = 'dev-cloud-mender';
const MAX_TOKEN_CHARS = 4096;

export interface DeviceTokenClaims {
  deviceId: string;
  authSetId: string;
}

/** Device JWTs (HS256 with a per-process secret, like Mender's `sub` = device id, `mender.device: true`). */
export function createDeviceTokens(deps: { now: () => Date; ttlSeconds: number }) {
  const key = createSecretKey(randomBytes(32));
  const epoch = (d: Date) => Math.floor(d.getTime() / 1000);
  return {
    async issue(c: DeviceTokenClaims, expiresAt?: Date): Promise<string> {
      const iat = epoch(deps.now());
      return new SignJWT({ 'mender.device': true, 'fort.authset': c.authSetId })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setIssuer(DEVICE_TOKEN_ISSUER)
        .setSubject(c.deviceId)
        .setIssuedAt(iat)
        .setJti(randomUUID())
        .setExpirationTime(expiresAt ? epoch(expiresAt) : iat + deps.ttlSeconds)
        .sign(key);
    },
    /** The claims of a valid, unexpired token of ours, else undefined. */
    async verify(token: string): Promise<DeviceTokenClaims | undefined> {
      if (token.length > MAX_TOKEN_CHARS) return undefined;
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: ['HS256'],
          issuer: DEVICE_TOKEN_ISSUER,
          currentDate: deps.now(),
          clockTolerance: 0,
        });
        const authSetId = payload['fort.authset'];
        if (typeof payload.sub !== 'string' || typeof authSetId !== 'string' || payload['mender.device'] !== true)
          return undefined;
        return { deviceId: payload.sub, authSetId };
      } catch {
        return undefined;
      }
    },
  };
}
export type DeviceTokens = ReturnType<typeof createDeviceTokens>;

/** Presigned download links: `sig` = HMAC-SHA256 over `<artifact id>\n<expire epoch s>`, base64url. */
export function createLinkSigner(deps: { baseUrl: () => string; now: () => Date }) {
  const secret = randomBytes(32);
  const mac = (id: string, expire: number) =>
    createHmac('sha256', secret).update(`${id}\n${expire}`).digest('base64url');
  return {
    link(artifactId: string, expiresAt: Date): { uri: string; expire: string } {
      const expire = Math.floor(expiresAt.getTime() / 1000);
      const q = new URLSearchParams({ expire: String(expire), sig: mac(artifactId, expire) });
      return {
        uri: `${deps.baseUrl()}/download/${encodeURIComponent(artifactId)}?${q.toString()}`,
        expire: new Date(expire * 1000).toISOString(),
      };
    },
    /** ok, or why the link is refused (403 either way). */
    check(artifactId: string, expire: string | undefined, sig: string | undefined): 'ok' | 'expired' | 'bad-signature' {
      if (!expire || !/^\d{1,12}$/.test(expire) || !sig) return 'bad-signature';
      const want = Buffer.from(mac(artifactId, Number(expire)));
      const got = Buffer.from(sig);
      if (want.length !== got.length || !timingSafeEqual(want, got)) return 'bad-signature';
      return Number(expire) * 1000 <= deps.now().getTime() ? 'expired' : 'ok';
    },
  };
}
export type LinkSigner = ReturnType<typeof createLinkSigner>;
