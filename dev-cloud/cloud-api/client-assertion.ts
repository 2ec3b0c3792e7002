import { decodeJwt, errors, jwtVerify } from 'jose';
import type { KeyObject } from 'node:crypto';
import type { ClientLookup } from './clients.js';

export const MAX_ASSERTION_LIFETIME_SECONDS = 300;
export const CLOCK_TOLERANCE_SECONDS = 30;
/** Far above any honest assertion; bounds the work of decoding a hostile one. */
export const MAX_ASSERTION_BYTES = 8192;

export type AssertionResult = { ok: true; clientId: string } | { ok: false; reason: string };

export interface AssertionVerifierOptions {
  clients: ClientLookup;
  /** The token endpoint URL exactly: the only accepted `aud`. */
  tokenUrl: string;
  now: () => Date;
}

/**
 * RFC 7523 client authentication (`private_key_jwt`) as dev-cloud/CLOUD-API.md specifies,
 * including replay refusal: each `jti` is remembered until its assertion could no longer
 * pass the `exp` check anyway.
 */
export function createAssertionVerifier(opts: AssertionVerifierOptions) {
  /** `<client id>\n<jti>` → epoch seconds after which the entry cannot matter. */
  const seen = new Map<string, number>();

  const prune = (nowSec: number) => {
    for (const [k, until] of seen) if (until < nowSec) seen.delete(k);
  };

  async function verify(assertion: string): Promise<AssertionResult> {
    const currentDate = opts.now();
    const nowSec = Math.floor(currentDate.getTime() / 1000);
    prune(nowSec);
    if (assertion.length > MAX_ASSERTION_BYTES) return { ok: false, reason: 'assertion too large' };
    let iss: unknown;
    try {
      // Unverified, only to pick the key; every claim is checked again after verification.
      iss = decodeJwt(assertion).iss;
    } catch {
      return { ok: false, reason: 'assertion is not a JWT' };
    }
    const client = typeof iss === 'string' ? opts.clients.get(iss) : undefined;
    if (!client) return { ok: false, reason: 'unknown client' };
    const check = (key: KeyObject, alg: string) =>
      jwtVerify(assertion, key, {
        algorithms: [alg],
        issuer: client.id,
        subject: client.id,
        audience: opts.tokenUrl,
        requiredClaims: ['exp', 'iat', 'jti'],
        maxTokenAge: MAX_ASSERTION_LIFETIME_SECONDS,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate,
      });
    let payload;
    try {
      ({ payload } = await check(client.key, client.alg));
    } catch (err) {
      // Signed with the key it rotated away from: accepted until the overlap ends.
      const prev = client.previous;
      if (
        !(err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JOSEAlgNotAllowed) ||
        !prev ||
        currentDate >= prev.until
      )
        return { ok: false, reason: describe(err) };
      try {
        ({ payload } = await check(prev.key, prev.alg));
      } catch (again) {
        return { ok: false, reason: describe(again) };
      }
    }
    const { exp, iat, jti } = payload as { exp: number; iat: number; jti: unknown };
    if (exp - iat > MAX_ASSERTION_LIFETIME_SECONDS)
      return { ok: false, reason: `assertion lifetime ${exp - iat} s exceeds ${MAX_ASSERTION_LIFETIME_SECONDS} s` };
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256)
      return { ok: false, reason: 'jti must be a non-empty string' };
    const key = `${client.id}\n${jti}`;
    if (seen.has(key)) return { ok: false, reason: 'jti already used (replay)' };
    seen.set(key, exp + CLOCK_TOLERANCE_SECONDS);
    return { ok: true, clientId: client.id };
  }

  return { verify, rememberedJtis: () => seen.size };
}
export type AssertionVerifier = ReturnType<typeof createAssertionVerifier>;

/** A reason for the operator's log and the `error_description`; never the assertion itself. */
function describe(err: unknown): string {
  if (err instanceof errors.JOSEAlgNotAllowed) return 'algorithm not allowed for this client';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad signature';
  if (err instanceof errors.JWTExpired)
    return err.claim === 'exp' ? 'assertion expired' : `assertion too old (${err.reason})`;
  if (err instanceof errors.JWTClaimValidationFailed)
    return `${err.claim} claim ${err.reason === 'missing' ? 'missing' : 'invalid'}`;
  if (err instanceof errors.JOSEError) return err.code;
  return 'invalid assertion';
}
