import { describe, expect, it } from 'vitest';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, UnsecuredJWT } from 'jose';
import { createAssertionVerifier } from '../../../../dev-cloud/cloud-api/client-assertion.js';
import type { RegisteredClient } from '../../../../dev-cloud/cloud-api/clients.js';
import { acceptedAlgorithm as algorithmFor } from '../../../../dev-cloud/cloud-api/jws-algorithm.js';

const TOKEN_URL = 'https://cloud.test/oauth/token';
const NOW = new Date('2026-03-01T12:00:00Z');
const NOW_S = NOW.getTime() / 1000;

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const client = (id: string, key: KeyObject): RegisteredClient => ({ id, key, alg: algorithmFor(key)! });
const clients = new Map([
  ['fort-ec', client('fort-ec', ec.publicKey)],
  ['fort-ed', client('fort-ed', ed.publicKey)],
]);

function verifier(now: () => Date = () => NOW) {
  return createAssertionVerifier({ clients, tokenUrl: TOKEN_URL, now });
}

let n = 0;
/** An assertion of `fort-ec` with its key, valid at NOW unless the options say otherwise. */
function assertion(o: { claims?: Record<string, unknown>; omit?: string[]; key?: KeyObject; alg?: string } = {}) {
  const payload: Record<string, unknown> = {
    iss: 'fort-ec',
    sub: 'fort-ec',
    aud: TOKEN_URL,
    iat: NOW_S,
    exp: NOW_S + 60,
    jti: `jti-${++n}`,
    ...o.claims,
  };
  for (const k of o.omit ?? []) delete payload[k];
  return new SignJWT(payload).setProtectedHeader({ alg: o.alg ?? 'ES256', typ: 'JWT' }).sign(o.key ?? ec.privateKey);
}

describe('client assertion verification (RFC 7523)', () => {
  it('maps registered key types to their only algorithm', () => {
    expect(algorithmFor(ec.publicKey)).toBe('ES256');
    expect(algorithmFor(ed.publicKey)).toBe('EdDSA');
    expect(
      algorithmFor(
        createPublicKey(
          generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'pem', type: 'spki' }),
        ),
      ),
    ).toBeUndefined();
    expect(algorithmFor(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey)).toBeUndefined();
  });

  it('accepts a valid ES256 assertion and an EdDSA one for an Ed25519 client', async () => {
    const v = verifier();
    expect(await v.verify(await assertion())).toEqual({ ok: true, clientId: 'fort-ec' });
    const edJwt = await new SignJWT({
      iss: 'fort-ed',
      sub: 'fort-ed',
      aud: TOKEN_URL,
      iat: NOW_S,
      exp: NOW_S + 300,
      jti: 'e1',
    })
      .setProtectedHeader({ alg: 'EdDSA' })
      .sign(ed.privateKey);
    expect(await v.verify(edJwt)).toEqual({ ok: true, clientId: 'fort-ed' });
  });

  it('refuses a replayed jti, per client, and forgets it once the assertion has expired anyway', async () => {
    let now = NOW;
    const v = verifier(() => now);
    const jwt = await assertion({ claims: { jti: 'once' } });
    expect((await v.verify(jwt)).ok).toBe(true);
    expect(await v.verify(jwt)).toEqual({ ok: false, reason: 'jti already used (replay)' });
    expect((await v.verify(await assertion({ claims: { jti: 'once' } }))).ok).toBe(false);
    expect(v.rememberedJtis()).toBe(1);
    // exp + tolerance passed: the entry is pruned, and the assertion is refused as expired.
    now = new Date((NOW_S + 60 + 31) * 1000);
    expect(await v.verify(jwt)).toEqual({ ok: false, reason: 'assertion expired' });
    expect(v.rememberedJtis()).toBe(0);
  });

  it.each([
    ['wrong aud', { claims: { aud: 'https://cloud.test/other' } }, 'aud claim invalid'],
    ['aud of another token endpoint', { claims: { aud: 'https://evil.test/oauth/token' } }, 'aud claim invalid'],
    ['iss ≠ sub', { claims: { sub: 'fort-ed' } }, 'sub claim invalid'],
    ['lifetime over 300 s', { claims: { exp: NOW_S + 301 } }, 'assertion lifetime 301 s exceeds 300 s'],
    ['expired beyond the tolerance', { claims: { iat: NOW_S - 100, exp: NOW_S - 31 } }, 'assertion expired'],
    ['iat in the future beyond the tolerance', { claims: { iat: NOW_S + 31, exp: NOW_S + 90 } }, 'iat claim invalid'],
    ['iat too old', { claims: { iat: NOW_S - 400, exp: NOW_S + 10 } }, 'assertion too old (check_failed)'],
    ['missing jti', { omit: ['jti'] }, 'jti claim missing'],
    ['empty jti', { claims: { jti: '' } }, 'jti must be a non-empty string'],
    ['missing exp', { omit: ['exp'] }, 'exp claim missing'],
    ['missing iat', { omit: ['iat'] }, 'iat claim missing'],
    ['signed by another key', { key: other.privateKey }, 'bad signature'],
  ])('refuses %s', async (_what, o, reason) => {
    expect(await verifier().verify(await assertion(o))).toEqual({ ok: false, reason });
  });

  it('accepts expiry and iat within the 30 s tolerance', async () => {
    const v = verifier();
    expect((await v.verify(await assertion({ claims: { iat: NOW_S - 100, exp: NOW_S - 29 } }))).ok).toBe(true);
    expect((await v.verify(await assertion({ claims: { iat: NOW_S + 29, exp: NOW_S + 89 } }))).ok).toBe(true);
  });

  it('refuses an unknown or missing issuer', async () => {
    const v = verifier();
    expect(await v.verify(await assertion({ claims: { iss: 'fort-x', sub: 'fort-x' } }))).toEqual({
      ok: false,
      reason: 'unknown client',
    });
    expect(await v.verify(await assertion({ omit: ['iss'] }))).toEqual({ ok: false, reason: 'unknown client' });
    expect(await v.verify('not.a.jwt')).toEqual({ ok: false, reason: 'assertion is not a JWT' });
  });

  it('takes the algorithm from the registered key, not from the token', async () => {
    const v = verifier();
    const none = new UnsecuredJWT({
      iss: 'fort-ec',
      sub: 'fort-ec',
      aud: TOKEN_URL,
      iat: NOW_S,
      exp: NOW_S + 60,
      jti: 'none-1',
    }).encode();
    expect(await v.verify(none)).toEqual({ ok: false, reason: 'algorithm not allowed for this client' });
    // An Ed25519 client's key cannot be used to accept an ES256 signature, nor vice versa.
    const asEd = await new SignJWT({
      iss: 'fort-ed',
      sub: 'fort-ed',
      aud: TOKEN_URL,
      iat: NOW_S,
      exp: NOW_S + 60,
      jti: 'x1',
    })
      .setProtectedHeader({ alg: 'ES256' })
      .sign(ec.privateKey);
    expect(await v.verify(asEd)).toEqual({ ok: false, reason: 'algorithm not allowed for this client' });
    // HS256 keyed with the public key's bytes (the classic confusion attack).
    const secret = new Uint8Array(ec.publicKey.export({ format: 'der', type: 'spki' }));
    const hs = await new SignJWT({
      iss: 'fort-ec',
      sub: 'fort-ec',
      aud: TOKEN_URL,
      iat: NOW_S,
      exp: NOW_S + 60,
      jti: 'hs-1',
    })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(secret);
    expect(await v.verify(hs)).toEqual({ ok: false, reason: 'algorithm not allowed for this client' });
  });

  it('refuses an oversized assertion before decoding it', async () => {
    const big = await assertion({ claims: { pad: 'x'.repeat(9000) } });
    expect(await verifier().verify(big)).toEqual({ ok: false, reason: 'assertion too large' });
  });
});
