import { describe, expect, it } from 'vitest';
import { createLocalJWKSet } from 'jose';
import {
  createUserTokenVerifier,
  hasDuplicateTopLevelKeys,
  TokenRejectedError,
} from '../../../../agent/api/user-token.js';
import { ATTACK_REASONS, testIssuer } from '../../../helpers/jwt.js';

const ISSUER = 'https://cloud.test';
const opts = { issuer: ISSUER, audience: 'fort-client-api', tenant: 't1' };

async function setup() {
  const issuer = await testIssuer(opts);
  const verify = createUserTokenVerifier({
    ...opts,
    algorithms: ['ES256'],
    clockToleranceSeconds: 30,
    maxTokenBytes: 8192,
    keys: createLocalJWKSet(issuer.jwks),
  });
  const reason = async (authorization: string | undefined, inQuery = false) => {
    try {
      await verify(authorization, inQuery);
      return 'accepted';
    } catch (err) {
      if (err instanceof TokenRejectedError) return err.reason;
      throw err;
    }
  };
  return { issuer, verify, reason };
}

describe('user token verification (RFC 8725)', () => {
  it('accepts a good token and returns the user and tenant', async () => {
    const { issuer, verify } = await setup();
    expect(await verify(`Bearer ${await issuer.sign()}`, false)).toEqual({ user: 'alice', tenant: 't1' });
  });

  it('refuses every attack with a specific reason', async () => {
    const { issuer, reason } = await setup();
    const attacks = await issuer.attacks();
    const got: Record<string, string> = {};
    for (const [name, token] of Object.entries(attacks)) got[name] = await reason(`Bearer ${token}`);
    expect(got).toEqual(ATTACK_REASONS);
  });

  it('refuses a missing header, another scheme, and a token in the query string', async () => {
    const { issuer, reason } = await setup();
    const good = await issuer.sign();
    expect(await reason(undefined)).toBe('missing_token');
    expect(await reason(`Basic ${good}`)).toBe('not_bearer');
    expect(await reason(`Bearer ${good}`, true)).toBe('token_in_query');
  });

  it('remembers a verified token until its exp or the cache max age, whichever is first', async () => {
    const issuer = await testIssuer(opts);
    const local = createLocalJWKSet(issuer.jwks);
    let keyLookups = 0;
    let clock = Date.now();
    const verify = createUserTokenVerifier({
      ...opts,
      algorithms: ['ES256'],
      clockToleranceSeconds: 30,
      maxTokenBytes: 8192,
      cacheMaxAgeSeconds: 60,
      now: () => clock,
      keys: (header, token) => {
        keyLookups++;
        return local(header, token);
      },
    });
    const nowS = Math.floor(clock / 1000);
    const longLived = `Bearer ${await issuer.sign({ exp: nowS + 3600 })}`;
    await verify(longLived, false);
    await verify(longLived, false);
    expect(keyLookups).toBe(1);
    clock += 61_000; // past the max age: checked against the keys again
    await verify(longLived, false);
    expect(keyLookups).toBe(2);

    const shortLived = `Bearer ${await issuer.sign({ exp: nowS + 70 })}`;
    expect(await verify(shortLived, false)).toEqual({ user: 'alice', tenant: 't1' });
    clock += 50_000; // past exp + tolerance, inside the max age: the cache must not extend a token's life
    await expect(verify(shortLived, false)).rejects.toMatchObject({ reason: 'expired' });
    // A refused token is never remembered: a forgery stays refused however often it is sent.
    const forged = `Bearer ${(await issuer.attacks())['wrong key']}`;
    for (let i = 0; i < 2; i++) await expect(verify(forged, false)).rejects.toMatchObject({ reason: 'bad_signature' });
  });

  it('detects duplicate top-level keys only', () => {
    expect(hasDuplicateTopLevelKeys('{"alg":"ES256","kid":"a"}')).toBe(false);
    expect(hasDuplicateTopLevelKeys('{"alg":"ES256","x":{"alg":1},"y":["alg"]}')).toBe(false);
    expect(hasDuplicateTopLevelKeys('{"alg":"ES256", "alg" : "none"}')).toBe(true);
    expect(hasDuplicateTopLevelKeys('{"a\\"b":1,"a\\"b":2}')).toBe(true);
  });
});
