import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  jwtVerify,
  SignJWT,
  UnsecuredJWT,
  type JSONWebKeySet,
  decodeJwt,
} from 'jose';
import { DIST, tempDir, testPki } from '../../helpers/fort.js';
import {
  cloudRequest,
  TEST_CLIENT_ID,
  testDevCloud,
  type CloudResponse,
  type TestDevCloud,
} from '../../helpers/dev-cloud.js';
import { ASSERTION_TYPE } from '../../../dev-cloud/cloud-api/token-route.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';

const FORT_ORIGIN = 'https://127.0.0.1:9443';

describe('dev cloud: cloud API (CLOUD-API.md) over HTTPS', () => {
  let pki: PkiPaths;
  let dev: TestDevCloud;
  let fortKey: KeyObject;
  beforeAll(async () => {
    pki = await testPki();
    dev = await testDevCloud(pki, { fortOrigins: [FORT_ORIGIN] });
    fortKey = createPrivateKey(readFileSync(pki.jwt.privateKey));
  });
  afterAll(async () => {
    await dev.stop();
  });

  const call = (method: string, path: string, opts: Parameters<typeof cloudRequest>[4] = {}) =>
    cloudRequest(dev.apiUrl, dev.ca, method, path, opts);
  const json = <T = Record<string, unknown>>(r: CloudResponse) => r.json() as T;

  let n = 0;
  /** The fort's client assertion, valid now unless the options say otherwise. */
  async function assertion(o: { claims?: Record<string, unknown>; omit?: string[]; key?: KeyObject } = {}) {
    const now = Math.floor(Date.now() / 1000);
    const payload: Record<string, unknown> = {
      iss: TEST_CLIENT_ID,
      sub: TEST_CLIENT_ID,
      aud: dev.tokenUrl,
      iat: now,
      exp: now + 60,
      jti: `it-${Date.now()}-${++n}`,
      ...o.claims,
    };
    for (const k of o.omit ?? []) delete payload[k];
    return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'JWT' }).sign(o.key ?? fortKey);
  }
  const exchange = (clientAssertion: string, extra: Record<string, string> = {}) =>
    call('POST', '/oauth/token', {
      form: {
        grant_type: 'client_credentials',
        client_assertion_type: ASSERTION_TYPE,
        client_assertion: clientAssertion,
        ...extra,
      },
    });
  const accessToken = async () => json<{ access_token: string }>(await exchange(await assertion())).access_token;
  const jwks = async () => createLocalJWKSet(json<JSONWebKeySet>(await call('GET', '/.well-known/jwks.json')));
  const verifyUserToken = async (token: string) =>
    jwtVerify(token, await jwks(), {
      issuer: dev.issuer,
      audience: `fort:${TEST_CLIENT_ID}`,
      algorithms: ['ES256'],
      typ: 'JWT',
    });

  describe('POST /oauth/token', () => {
    it('issues an opaque, uncacheable bearer token for a valid assertion', async () => {
      const before = dev.cloudApi.stats().tokensIssued;
      const res = await exchange(await assertion());
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      const body = json(res);
      expect(body).toEqual({
        access_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
        token_type: 'Bearer',
        expires_in: 600,
      });
      expect(dev.cloudApi.stats().tokensIssued).toBe(before + 1);
      expect(dev.tokenUrl).toBe(`${dev.apiUrl}/oauth/token`);
    });

    it('refuses a replayed assertion', async () => {
      const a = await assertion();
      expect((await exchange(a)).status).toBe(200);
      const again = await exchange(a);
      expect(again.status).toBe(401);
      expect(json(again)).toEqual({ error: 'invalid_client', error_description: 'jti already used (replay)' });
      expect(dev.cloudApi.stats().lastTokenRefusal).toBe('jti already used (replay)');
    });

    it.each([
      ['wrong aud', () => assertion({ claims: { aud: `${dev.issuer}/api/v1/authorize` } }), 'aud claim invalid'],
      ['iss ≠ sub', () => assertion({ claims: { sub: 'fort-other' } }), 'sub claim invalid'],
      ['unknown client', () => assertion({ claims: { iss: 'fort-unknown', sub: 'fort-unknown' } }), 'unknown client'],
      [
        'lifetime over 300 s',
        () => assertion({ claims: { exp: Math.floor(Date.now() / 1000) + 301 } }),
        /^assertion lifetime 30[01] s exceeds 300 s$/,
      ],
      [
        'expired',
        () =>
          assertion({ claims: { iat: Math.floor(Date.now() / 1000) - 200, exp: Math.floor(Date.now() / 1000) - 60 } }),
        'assertion expired',
      ],
      [
        'signed by another key',
        () => assertion({ key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }),
        'bad signature',
      ],
      [
        'alg none',
        async () =>
          new UnsecuredJWT({
            iss: TEST_CLIENT_ID,
            sub: TEST_CLIENT_ID,
            aud: dev.tokenUrl,
            jti: 'none',
            iat: Math.floor(Date.now() / 1000),
            exp: Math.floor(Date.now() / 1000) + 60,
          }).encode(),
        'algorithm not allowed for this client',
      ],
      ['missing jti', () => assertion({ omit: ['jti'] }), 'jti claim missing'],
      ['garbage', async () => 'not-a-jwt', 'assertion is not a JWT'],
    ])('refuses %s with 401 invalid_client', async (_what, make, description) => {
      const before = dev.cloudApi.stats().tokensRefused;
      const res = await exchange(await make());
      expect(res.status).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(json(res)).toEqual({
        error: 'invalid_client',
        error_description: typeof description === 'string' ? description : expect.stringMatching(description),
      });
      expect(dev.cloudApi.stats().tokensRefused).toBe(before + 1);
    });

    it('answers malformed requests with 400 and an RFC 6749 error', async () => {
      const a = await assertion();
      const wrongGrant = await exchange(a, { grant_type: 'password' });
      expect([wrongGrant.status, json(wrongGrant).error]).toEqual([400, 'unsupported_grant_type']);
      const missing = await call('POST', '/oauth/token', {
        form: { grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE },
      });
      expect([missing.status, json(missing).error]).toEqual([400, 'invalid_request']);
      const noGrant = await call('POST', '/oauth/token', {
        form: { client_assertion_type: ASSERTION_TYPE, client_assertion: a },
      });
      expect([noGrant.status, json(noGrant).error]).toEqual([400, 'invalid_request']);
      const otherType = await exchange(a, {
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer',
      });
      expect([otherType.status, json(otherType).error]).toEqual([400, 'invalid_request']);
      const repeated = await call('POST', '/oauth/token', {
        form: `grant_type=client_credentials&grant_type=client_credentials&client_assertion_type=${encodeURIComponent(ASSERTION_TYPE)}&client_assertion=${a}`,
      });
      expect([repeated.status, json(repeated).error_description]).toEqual([400, 'parameter grant_type repeated']);
      const asJson = await call('POST', '/oauth/token', {
        json: { grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: a },
      });
      expect([asJson.status, json(asJson).error]).toEqual([400, 'invalid_request']);
      const huge = await call('POST', '/oauth/token', {
        form: { grant_type: 'client_credentials', pad: 'x'.repeat(20_000) },
      });
      expect([huge.status, json(huge).error]).toEqual([413, 'invalid_request']);
      // None of these consumed the assertion's jti.
      expect((await exchange(a)).status).toBe(200);
    });
  });

  describe('user tokens and the JWKS', () => {
    it('serves ES256 public keys, and /dev/v1/login tokens verify against them', async () => {
      const res = await call('GET', '/.well-known/jwks.json');
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('max-age=300');
      const { keys } = json<JSONWebKeySet>(res);
      expect(keys).toEqual([
        {
          kty: 'EC',
          crv: 'P-256',
          x: expect.any(String),
          y: expect.any(String),
          kid: dev.cloudApi.currentKid(),
          alg: 'ES256',
          use: 'sig',
        },
      ]);

      const login = await call('POST', '/dev/v1/login', { json: { user: 'alice', tenant: 't1', ttl_seconds: 120 } });
      expect(login.status).toBe(200);
      const { token, expires_at } = json<{ token: string; expires_at: string }>(login);
      const { payload, protectedHeader } = await verifyUserToken(token);
      expect(protectedHeader).toEqual({ alg: 'ES256', kid: dev.cloudApi.currentKid(), typ: 'JWT' });
      expect(payload).toEqual({
        iss: dev.issuer,
        aud: `fort:${TEST_CLIENT_ID}`,
        sub: 'alice',
        tenant: 't1',
        iat: expect.any(Number),
        nbf: payload.iat,
        exp: payload.iat! + 120,
        jti: expect.any(String),
      });
      expect(new Date(expires_at).getTime()).toBe(payload.exp! * 1000);
      const dflt = await verifyUserToken(await dev.login('bob', 't1'));
      expect(dflt.payload.exp! - dflt.payload.iat!).toBe(3600);
      expect(dflt.payload.jti).not.toBe(payload.jti);
    });

    it('refuses malformed logins', async () => {
      for (const body of [
        { user: 'alice' },
        { user: '', tenant: 't1' },
        { user: 'alice', tenant: 't1', ttl_seconds: 0 },
        { user: 'alice', tenant: 't1', admin: true },
      ]) {
        const res = await call('POST', '/dev/v1/login', { json: body });
        expect([res.status, json(res).code]).toEqual([400, 'FORT_ERR_BAD_REQUEST']);
      }
      const broken = await call('POST', '/dev/v1/login', {
        form: '{',
        headers: { 'content-type': 'application/json' },
      });
      expect([broken.status, broken.headers['content-type'], json(broken).code]).toEqual([
        400,
        'application/problem+json; charset=utf-8',
        'FORT_ERR_BAD_REQUEST',
      ]);
    });

    it('mints each token for one fort of the tenant: named, or its only one; never a fort of another tenant', async () => {
      const aud = async (body: Record<string, unknown>) => {
        const res = await call('POST', '/dev/v1/login', { json: body });
        if (res.status !== 200) return `${res.status} ${json<{ detail: string }>(res).detail}`;
        return decodeJwt(json<{ token: string }>(res).token).aud;
      };
      expect(await aud({ user: 'alice', tenant: 't1' })).toBe(`fort:${TEST_CLIENT_ID}`);
      expect(await aud({ user: 'alice', tenant: 't1', fort: TEST_CLIENT_ID })).toBe(`fort:${TEST_CLIENT_ID}`);
      expect(await aud({ user: 'alice', tenant: 't1', fort: 'fort-elsewhere' })).toBe(
        '400 fort: fort-elsewhere is not a fort of t1',
      );
      expect(await aud({ user: 'alice', tenant: 't2' })).toBe('fort:fort-elsewhere');
      expect(await aud({ user: 'alice', tenant: 'nobody' })).toBe(
        '400 fort: name the fort the token is for (tenant nobody has 0)',
      );
    });

    it('rotates: both keys served, new tokens use the new kid; a retired key is no longer served', async () => {
      const oldKid = dev.cloudApi.currentKid();
      const oldToken = await dev.login('alice', 't1');
      const rotated = await call('POST', '/dev/v1/jwks/rotate');
      expect(rotated.status).toBe(200);
      const newKid = json<{ kid: string }>(rotated).kid;
      expect(newKid).not.toBe(oldKid);
      expect(json<JSONWebKeySet>(await call('GET', '/.well-known/jwks.json')).keys.map((k) => k.kid)).toEqual([
        oldKid,
        newKid,
      ]);
      const newToken = await dev.login('alice', 't1');
      expect(decodeProtectedHeader(newToken).kid).toBe(newKid);
      await verifyUserToken(oldToken);
      await verifyUserToken(newToken);

      const current = await call('POST', '/dev/v1/jwks/retire', { json: { kid: newKid } });
      expect([current.status, json(current).code]).toEqual([409, 'FORT_ERR_CONFLICT']);
      const unknown = await call('POST', '/dev/v1/jwks/retire', { json: { kid: 'no-such-kid' } });
      expect([unknown.status, unknown.headers['content-type'], json(unknown).code]).toEqual([
        404,
        'application/problem+json; charset=utf-8',
        'FORT_ERR_NOT_FOUND',
      ]);
      const retired = await call('POST', '/dev/v1/jwks/retire', { json: { kid: oldKid } });
      expect(retired.status).toBe(200);
      expect(json<JSONWebKeySet>(await call('GET', '/.well-known/jwks.json')).keys.map((k) => k.kid)).toEqual([newKid]);
      await expect(verifyUserToken(oldToken)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
      await verifyUserToken(newToken);
    });

    it('redirects a login with the token in the fragment, only to a configured fort origin', async () => {
      const ok = await call(
        'GET',
        `/dev/v1/login?${new URLSearchParams({ user: 'carol', tenant: 't1', redirect_uri: `${FORT_ORIGIN}/app/?x=1#old` }).toString()}`,
      );
      expect(ok.status).toBe(302);
      expect(ok.headers['cache-control']).toBe('no-store');
      const location = new URL(String(ok.headers.location));
      expect(`${location.origin}${location.pathname}${location.search}`).toBe(`${FORT_ORIGIN}/app/?x=1`);
      const token = /^#token=(.+)$/.exec(location.hash)?.[1];
      expect((await verifyUserToken(token!)).payload).toMatchObject({ sub: 'carol', tenant: 't1' });

      for (const redirect of [
        'https://127.0.0.1:9444/app',
        'http://127.0.0.1:9443/app',
        'https://evil.test/?https://127.0.0.1:9443',
        '//127.0.0.1:9443/app',
        'not a url',
      ]) {
        const res = await call(
          'GET',
          `/dev/v1/login?${new URLSearchParams({ user: 'carol', tenant: 't1', redirect_uri: redirect }).toString()}`,
        );
        expect([redirect, res.status, json(res).code, res.headers.location]).toEqual([
          redirect,
          400,
          'FORT_ERR_BAD_REQUEST',
          undefined,
        ]);
      }
    });
  });

  describe('POST /api/v1/authorize', () => {
    let bearer: string;
    beforeAll(async () => {
      bearer = await accessToken();
    });
    const authorize = (body: unknown, token = bearer) =>
      call('POST', '/api/v1/authorize', { json: body, headers: { authorization: `Bearer ${token}` } });

    it('answers allow/deny from the policy and counts the calls', async () => {
      const before = dev.cloudApi.stats();
      const cases: [string, string, string, string, boolean][] = [
        ['alice', 't1', 'app.list', 'sales-2026', true],
        ['alice', 't1', 'app.read', 'sales-2026', true],
        ['alice', 't1', 'app.reload', 'sales-2026', false],
        ['alice', 't1', 'app.read', 'hr-2026', false],
        ['carol', 't1', 'app.reload', 'hr-2026', true],
        ['carol', 't1', 'app.read', 'sales-2026', true],
        ['bob', 't1', 'app.list', 'sales-2026', false],
        ['mallory', 't1', 'app.list', 'sales-2026', false],
        ['alice', 't1', 'app.list', 'no-such-app', false],
        ['alice', 't9', 'app.list', 'sales-2026', false],
        // t2 grants alice the same, but does not list this fort.
        ['alice', 't2', 'app.read', 'sales-2026', false],
      ];
      for (const [user, tenant, action, resource, allow] of cases) {
        const res = await authorize({ user, tenant, action, resource });
        expect([user, tenant, action, resource, res.status, res.json()]).toEqual([
          user,
          tenant,
          action,
          resource,
          200,
          { allow, ttl: 60 },
        ]);
      }
      const after = dev.cloudApi.stats();
      expect(after.authorize - before.authorize).toBe(cases.length);
      expect(after.decisions - before.decisions).toBe(cases.length);
    });

    it('401 with www-authenticate for a missing, malformed or unknown access token', async () => {
      const before = dev.cloudApi.stats();
      const body = { user: 'alice', tenant: 't1', action: 'app.read', resource: 'sales-2026' };
      const responses = [
        await call('POST', '/api/v1/authorize', { json: body }),
        await call('POST', '/api/v1/authorize', {
          json: body,
          headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
        }),
        await authorize(body, 'x'.repeat(43)),
        // A user token is not an access token.
        await authorize(body, await dev.login('alice', 't1')),
      ];
      for (const res of responses) {
        expect(res.status).toBe(401);
        expect(res.headers['www-authenticate']).toBe('Bearer');
        expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
        expect(json(res)).toMatchObject({ status: 401, code: 'FORT_ERR_UNAUTHENTICATED' });
      }
      const after = dev.cloudApi.stats();
      expect(after.authorize - before.authorize).toBe(responses.length);
      expect(after.decisions).toBe(before.decisions);
    });

    it('400 problem for an unknown action or a malformed body', async () => {
      const bad = [
        { user: 'alice', tenant: 't1', action: 'app.delete', resource: 'sales-2026' },
        { user: 'alice', tenant: 't1', action: 'app.read' },
        { user: 'alice', tenant: 't1', action: 'app.read', resource: 'sales-2026', admin: true },
        { user: 1, tenant: 't1', action: 'app.read', resource: 'sales-2026' },
        [],
      ];
      for (const body of bad) {
        const res = await authorize(body);
        expect([res.status, res.headers['content-type'], json(res).code]).toEqual([
          400,
          'application/problem+json; charset=utf-8',
          'FORT_ERR_BAD_REQUEST',
        ]);
      }
      const unknownAction = json(await authorize(bad[0]));
      expect(unknownAction.detail).toBe('action: action must be one of app.list, app.read, app.reload');
      const broken = await call('POST', '/api/v1/authorize', {
        form: '{"user":',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      });
      expect([broken.status, json(broken).code]).toEqual([400, 'FORT_ERR_BAD_REQUEST']);
    });

    it('follows setPolicy, and revoked access tokens get 401', async () => {
      const body = { user: 'bob', tenant: 't1', action: 'app.list', resource: 'sales-2026' };
      expect(json(await authorize(body))).toEqual({ allow: false, ttl: 60 });
      expect(() => dev.cloudApi.setPolicy({ tenants: { t1: { apps: { a: { space: 'nope' } } } } })).toThrow(
        'tenants.t1.apps.a.space: names a space that is not in spaces',
      );
      dev.cloudApi.setPolicy({
        decision_ttl_seconds: 5,
        tenants: {
          t1: {
            forts: [TEST_CLIENT_ID],
            users: { bob: {} },
            spaces: { sales: { 'user:bob': ['app.list'] } },
            apps: { 'sales-2026': { space: 'sales' } },
          },
        },
      });
      expect(json(await authorize(body))).toEqual({ allow: true, ttl: 5 });
      dev.cloudApi.setPolicy(JSON.parse(readFileSync(dev.policyFile, 'utf8')) as never);
      expect(json(await authorize(body))).toEqual({ allow: false, ttl: 60 });

      dev.cloudApi.revokeAccessTokens();
      expect((await authorize(body)).status).toBe(401);
      bearer = await accessToken();
      expect((await authorize(body)).status).toBe(200);
    });
  });

  it('refuse: 429/503 with Retry-After on the token endpoint and the fort routes armed, as often as armed', async () => {
    const bearer = await accessToken();
    const body = { user: 'alice', tenant: 't1', action: 'app.read', resource: 'sales-2026' };
    const authorize = () =>
      call('POST', '/api/v1/authorize', { json: body, headers: { authorization: `Bearer ${bearer}` } });
    try {
      dev.cloudApi.refuse({ status: 429, retryAfter: 3, routes: ['token'] });
      dev.cloudApi.refuse({ status: 503, retryAfter: new Date(Date.UTC(2030, 0, 1)), routes: ['authorize'], times: 2 });
      dev.cloudApi.refuse({ status: 429, routes: ['authorize'] });
      const token = await exchange(await assertion());
      expect([token.status, token.headers['retry-after'], json(token).error]).toEqual([
        429,
        '3',
        'temporarily_unavailable',
      ]);
      expect((await exchange(await assertion())).status).toBe(200);
      for (let i = 0; i < 2; i++) {
        const res = await authorize();
        expect([res.status, res.headers['retry-after'], json(res).code]).toEqual([
          503,
          'Tue, 01 Jan 2030 00:00:00 GMT',
          'FORT_ERR_UNAVAILABLE',
        ]);
      }
      const limited = await authorize();
      expect([limited.status, limited.headers['retry-after'], json(limited).code]).toEqual([
        429,
        undefined,
        'FORT_ERR_RATE_LIMITED',
      ]);
      dev.cloudApi.refuse({ status: 503, retryAfter: 9, routes: ['unpair'] });
      expect((await authorize()).status).toBe(200); // not armed for authorize
      dev.cloudApi.clearRefusals();
    } finally {
      dev.cloudApi.clearRefusals();
    }
    expect((await authorize()).status).toBe(200);
  });

  it('setAvailable(false): token endpoint and authorize answer 503 on the open port', async () => {
    const bearer = await accessToken();
    const body = { user: 'alice', tenant: 't1', action: 'app.read', resource: 'sales-2026' };
    dev.cloudApi.setAvailable(false);
    try {
      const token = await exchange(await assertion());
      expect([token.status, json(token).error]).toEqual([503, 'temporarily_unavailable']);
      const before = dev.cloudApi.stats().authorize;
      const decision = await call('POST', '/api/v1/authorize', {
        json: body,
        headers: { authorization: `Bearer ${bearer}` },
      });
      expect([decision.status, decision.headers['content-type'], json(decision).code]).toEqual([
        503,
        'application/problem+json; charset=utf-8',
        'FORT_ERR_UNAVAILABLE',
      ]);
      expect(dev.cloudApi.stats().authorize).toBe(before + 1);
      expect((await call('GET', '/health')).status).toBe(200);
    } finally {
      dev.cloudApi.setAvailable(true);
    }
    expect(
      json(await call('POST', '/api/v1/authorize', { json: body, headers: { authorization: `Bearer ${bearer}` } })),
    ).toEqual({ allow: true, ttl: 60 });
  });

  it('serves the hub page and its script separately under a CSP without inline script', async () => {
    const page = await call('GET', '/hub?fort=https://127.0.0.1:9443');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.body).toContain('<script src="/hub/app.js" defer></script>');
    expect(page.body).not.toMatch(/<script>|\son[a-z]+=/);
    const script = await call('GET', '/hub/app.js');
    expect([script.status, script.headers['content-type']]).toEqual([200, 'text/javascript; charset=utf-8']);
    expect(script.body).not.toContain('innerHTML');
  });

  it('`dev-cloud token` prints a user token from the running dev cloud', async () => {
    const home = tempDir('devhome');
    writeFileSync(
      join(home, 'dev-cloud.json'),
      JSON.stringify({ cloud: { url: dev.apiUrl }, ca: { cloudServer: pki.cloudServer.ca } }),
    );
    const { stdout } = await promisify(execFile)(process.execPath, [
      join(DIST, 'dev-cloud/cli.js'),
      'token',
      '--user',
      'alice',
      '--tenant',
      't1',
      '--ttl',
      '90',
      '--home',
      home,
    ]);
    const { payload } = await verifyUserToken(stdout.trim());
    expect(payload).toMatchObject({ sub: 'alice', tenant: 't1' });
    expect(payload.exp! - payload.iat!).toBe(90);
    await expect(
      promisify(execFile)(process.execPath, [
        join(DIST, 'dev-cloud/cli.js'),
        'token',
        '--user',
        'alice',
        '--tenant',
        't1',
        '--ttl',
        'soon',
        '--home',
        home,
      ]),
    ).rejects.toMatchObject({ code: 1 });
  });
});
