import { createHash } from 'node:crypto';
import { errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { FortError } from '../../lib/errors.js';
import { createLru } from '../../lib/lru.js';

export interface UserIdentity {
  user: string;
  tenant: string;
}

/** Why a token was refused: logged and audited, never the token itself. */
export type TokenRejection =
  | 'missing_token'
  | 'token_in_query'
  | 'not_bearer'
  | 'token_too_large'
  | 'malformed'
  | 'duplicate_header_param'
  | 'crit_unsupported'
  | 'alg_not_allowed'
  | 'missing_kid'
  | 'unknown_kid'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'wrong_tenant'
  | 'missing_claim'
  | 'jwks_unavailable'
  | 'invalid_token';

/** A refused user token: 401 FORT_ERR_UNAUTHENTICATED, or 503 FORT_ERR_AUTHN_UNAVAILABLE when the JWKS cannot be fetched. */
export class TokenRejectedError extends FortError {
  constructor(readonly reason: TokenRejection) {
    super(
      reason === 'jwks_unavailable' ? 'FORT_ERR_AUTHN_UNAVAILABLE' : 'FORT_ERR_UNAUTHENTICATED',
      `user token refused: ${reason}`,
    );
  }
}

export interface UserTokenVerifierOptions {
  issuer: string;
  audience: string;
  /** The fort's tenant: tokens of any other tenant are refused. */
  tenant: string;
  /** Asymmetric algorithms only (RFC 8725): never the token's own choice, never HMAC or none. */
  algorithms: string[];
  clockToleranceSeconds: number;
  maxTokenBytes: number;
  keys: JWTVerifyGetKey;
  /** Verified tokens remembered (by SHA-256, never the token) so a browser's next request skips the signature check. 0 = off. */
  cacheSize?: number;
  /** Longest a verified token is trusted without re-checking it against the JWKS, so a retired key stops working within this. */
  cacheMaxAgeSeconds?: number;
  now?: () => number;
}

interface Verified {
  identity: UserIdentity;
  /** ms: the earlier of the token's exp (plus tolerance, as jose applies it) and the cache's max age. */
  until: number;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Verifies a browser's `Authorization: Bearer` user token (RFC 8725): size first, then the
 * header's shape (strict JSON, no duplicate or `crit` parameters, allowed alg, a kid), then
 * jose's signature and claim checks, then the tenant.
 */
export function createUserTokenVerifier(opts: UserTokenVerifierOptions) {
  const now = opts.now ?? Date.now;
  const cacheSize = opts.cacheSize ?? 1024;
  const maxAgeMs = (opts.cacheMaxAgeSeconds ?? 60) * 1000;
  const verified = cacheSize > 0 ? createLru<string, Verified>(cacheSize) : undefined;

  return async function verify(authorization: string | undefined, queryHasToken: boolean): Promise<UserIdentity> {
    // A token in a URL ends up in proxy and browser logs: refused even when a header is present too.
    if (queryHasToken) throw new TokenRejectedError('token_in_query');
    if (!authorization) throw new TokenRejectedError('missing_token');
    const m = /^Bearer +([^\s]+)\s*$/i.exec(authorization);
    if (!m) throw new TokenRejectedError('not_bearer');
    const token = m[1]!;
    if (Buffer.byteLength(token) > opts.maxTokenBytes) throw new TokenRejectedError('token_too_large');
    // An ES256 verify costs more than the rest of a request; a browser sends the same token for minutes.
    const digest = verified && createHash('sha256').update(token).digest('base64url');
    const hit = digest ? verified.get(digest) : undefined;
    if (hit) {
      if (now() < hit.until) return hit.identity;
      verified!.delete(digest!);
    }
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((p, i) => B64URL.test(p) || (i === 2 && p === '')))
      throw new TokenRejectedError('malformed');
    const headerText = Buffer.from(parts[0]!, 'base64url').toString('utf8');
    let header: unknown;
    try {
      header = JSON.parse(headerText);
    } catch {
      throw new TokenRejectedError('malformed');
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header))
      throw new TokenRejectedError('malformed');
    if (hasDuplicateTopLevelKeys(headerText)) throw new TokenRejectedError('duplicate_header_param');
    const h = header as Record<string, unknown>;
    if ('crit' in h) throw new TokenRejectedError('crit_unsupported');
    if (typeof h.alg !== 'string' || !opts.algorithms.includes(h.alg)) throw new TokenRejectedError('alg_not_allowed');
    if (typeof h.kid !== 'string' || h.kid.length === 0) throw new TokenRejectedError('missing_kid');
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, opts.keys, {
        issuer: opts.issuer,
        audience: opts.audience,
        algorithms: opts.algorithms,
        clockTolerance: opts.clockToleranceSeconds,
        currentDate: new Date(now()),
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      throw new TokenRejectedError(rejectionOf(err));
    }
    if (payload.tenant !== opts.tenant) throw new TokenRejectedError('wrong_tenant');
    const identity = { user: payload.sub as string, tenant: opts.tenant };
    if (digest)
      verified.set(digest, {
        identity,
        until: Math.min(((payload.exp as number) + opts.clockToleranceSeconds) * 1000, now() + maxAgeMs),
      });
    return identity;
  };
}
export type UserTokenVerifier = ReturnType<typeof createUserTokenVerifier>;

function rejectionOf(err: unknown): TokenRejection {
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' || err.claim === 'iat') return 'not_yet_valid';
    if (err.claim === 'iss') return 'wrong_issuer';
    if (err.claim === 'aud') return 'wrong_audience';
    if (err.reason === 'missing') return 'missing_claim';
    return 'invalid_token';
  }
  if (err instanceof errors.JWKSNoMatchingKey) return 'unknown_kid';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'alg_not_allowed';
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return 'jwks_unavailable';
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'malformed';
  // Anything else (e.g. the JWKS fetch failed) is still a refusal, never an allow.
  const code = (err as { code?: string }).code;
  return code === 'FORT_ERR_UPSTREAM' || code === 'FORT_ERR_PROXY' ? 'jwks_unavailable' : 'invalid_token';
}

/**
 * JSON.parse silently keeps the last of duplicate keys; a verifier and another party might
 * read different values (RFC 7515 §4 says reject). Scans the header's top-level keys.
 */
export function hasDuplicateTopLevelKeys(json: string): boolean {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let j = i + 1;
      while (j < json.length && json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      const raw = json.slice(i, j + 1);
      i = j;
      if (depth !== 1) continue;
      let k = i + 1;
      while (k < json.length && /\s/.test(json[k]!)) k++;
      if (json[k] !== ':') continue;
      const key = JSON.parse(raw) as string;
      if (seen.has(key)) return true;
      seen.add(key);
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return false;
}
