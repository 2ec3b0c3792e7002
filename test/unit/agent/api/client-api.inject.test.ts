import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import type { JWTVerifyGetKey } from 'jose';
import { FortError } from '../../../../lib/errors.js';
import type { PkiPaths } from '../../../../lib/pki/layout.js';
import { clientApiRig, clientZonePki, type ClientApiRig } from '../../../helpers/client-api.js';
import { expectProblem, processWarnings } from '../../../helpers/inject.js';
import { ATTACK_REASONS } from '../../../helpers/jwt.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// Fastify warns once per process, when the option it deprecates is first used.
const warnings = processWarnings();

describe('client API routes in-process (inject)', () => {
  let pki: PkiPaths;
  let rig: ClientApiRig;
  let alice: string;
  let bob: string;
  beforeAll(async () => {
    pki = await clientZonePki();
    rig = await clientApiRig(pki);
    alice = await rig.issuer.sign();
    bob = await rig.issuer.sign({ sub: 'bob' });
  });
  afterAll(() => rig?.close());

  const call = (token: string | undefined, req: InjectOptions) =>
    rig.app.inject({ ...req, headers: { ...req.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) } });
  const get = (url: string, token?: string) => call(token, { method: 'GET', url });

  /** A 401 for `reason`: the problem, the challenge, nothing of the token in the answer or the log, and an audited deny. */
  function expectRefusedToken(
    res: LightMyRequestResponse,
    reason: string,
    token: string | undefined,
    target = 'GET /api/v1/apps',
  ) {
    expect(expectProblem(res, 'FORT_ERR_UNAUTHENTICATED').detail).toBe(`user token refused: ${reason}`);
    expect(res.headers['www-authenticate']).toBe(`Bearer error="invalid_token", error_description="${reason}"`);
    for (const part of token ? [token, ...token.split('.').filter((p) => p.length > 8)] : []) {
      expect(res.body).not.toContain(part);
      expect(rig.lines.join('\n')).not.toContain(part);
    }
    expect(rig.audit().at(-1)).toMatchObject({
      actor: 'anonymous',
      action: 'auth',
      target,
      detail: { decision: 'deny', reason, requestId: res.json().requestId },
    });
  }

  describe('authentication: 401 problem+json, the token never echoed', () => {
    const refusals: [string, (attacks: Record<string, string>) => string | undefined, string][] = [
      ['no token', () => undefined, 'missing_token'],
      ['a malformed token', () => 'not-a-jwt', 'malformed'],
      ['a bad signature', (a) => a['wrong key'], 'bad_signature'],
      ['an expired token', (a) => a['expired'], 'expired'],
      ['a token for another audience', (a) => a['wrong aud'], 'wrong_audience'],
    ];
    it.each(refusals)('%s', async (_name, pick, reason) => {
      const asked = rig.cloud.asked.length;
      const token = pick(await rig.issuer.attacks());
      expectRefusedToken(await get('/api/v1/apps', token), reason, token);
      expect(rig.cloud.asked.length).toBe(asked);
    });

    it('refuses every forged token of the attack suite, each for its reason', async () => {
      const got: Record<string, string> = {};
      for (const [name, token] of Object.entries(await rig.issuer.attacks())) {
        const res = await get('/api/v1/apps/sales-2026/tables', token);
        expectRefusedToken(res, ATTACK_REASONS[name]!, token, 'GET /api/v1/apps/sales-2026/tables');
        got[name] = String(res.headers['www-authenticate']).replace(/^.*error_description="(.*)"$/, '$1');
      }
      expect(got).toEqual(ATTACK_REASONS);
    });

    it('refuses another scheme than Bearer', async () => {
      const res = await call(undefined, {
        method: 'GET',
        url: '/api/v1/apps',
        headers: { authorization: 'Basic YWxpY2U6c2VjcmV0' },
      });
      expectRefusedToken(res, 'not_bearer', 'YWxpY2U6c2VjcmV0');
    });

    it("refuses a token in the query string even beside a good header, and never echoes or logs the URL's token", async () => {
      const leaked = await rig.issuer.sign({ sub: 'mallory' });
      const res = await get(`/api/v1/apps?access_token=${leaked}`, alice);
      expectRefusedToken(res, 'token_in_query', leaked);
    });

    it('answers 503, not 401, when the keys that sign tokens cannot be fetched (fail closed, no sign-in loop)', async () => {
      const unreachable: JWTVerifyGetKey = async () => {
        throw new FortError('FORT_ERR_UPSTREAM', 'cloud JWKS cloud.test answered 502', { fatal: false });
      };
      const cut = await clientApiRig(pki, { keys: unreachable });
      try {
        const res = await cut.app.inject({
          url: '/api/v1/apps',
          headers: { authorization: `Bearer ${await cut.issuer.sign()}` },
        });
        expect(expectProblem(res, 'FORT_ERR_AUTHN_UNAVAILABLE').detail).toMatch(
          /^the keys that sign user tokens cannot be fetched/,
        );
        expect({ retryAfter: res.headers['retry-after'], challenge: res.headers['www-authenticate'] }).toEqual({
          retryAfter: '5',
          challenge: undefined,
        });
        expect(cut.cloud.asked).toEqual([]);
      } finally {
        await cut.close();
      }
    });
  });

  describe('authorisation by the cloud, data from the store', () => {
    it('lists only the apps the cloud lets the user list', async () => {
      const res = await get('/api/v1/apps', alice);
      expect(res.statusCode).toBe(200);
      expect(
        res
          .json()
          .apps.map((a: { id: string }) => a.id)
          .sort(),
      ).toEqual(['empty-2026', 'sales-2026']);
      expect(
        rig.cloud.asked
          .filter((q) => q.user === 'alice' && q.action === 'app.list')
          .map((q) => q.resource)
          .sort(),
      ).toEqual(['empty-2026', 'hr-2026', 'sales-2026']);
      expect((await get('/api/v1/apps', bob)).json()).toEqual({ apps: [] });
    });

    it("serves an allowed app, its tables and a page of rows, with the API's headers", async () => {
      expect((await get('/api/v1/apps/sales-2026', alice)).json()).toEqual({
        id: 'sales-2026',
        name: 'Sales 2026',
        space: 'sales',
        updatedAt: expect.any(String),
        hasData: true,
      });
      expect((await get('/api/v1/apps/sales-2026/tables', alice)).json()).toEqual({
        tables: [{ name: 'orders', rowCount: 250 }],
      });
      const page = await get('/api/v1/apps/sales-2026/tables/orders/rows?offset=240&limit=100', alice);
      expect(page.json()).toMatchObject({ columns: ['id', 'customer', 'amount'], offset: 240, limit: 100, total: 250 });
      expect(page.json().rows.map((r: unknown[]) => r[0])).toEqual([241, 242, 243, 244, 245, 246, 247, 248, 249, 250]);
      expect(page.headers).toMatchObject({
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'content-security-policy': "default-src 'none';frame-ancestors 'none'",
      });
      expect(page.headers['x-request-id']).toMatch(UUID);
      expect((await get('/api/v1/apps/empty-2026/tables/anything/rows', alice)).json()).toEqual({
        columns: [],
        rows: [],
        offset: 0,
        limit: 100,
        total: 0,
      });
    });

    it('answers 403 when the cloud denies, audits it, and asks the cloud once while the decision is fresh', async () => {
      const asked = () =>
        rig.cloud.asked.filter((q) => q.user === 'bob' && q.action === 'app.read' && q.resource === 'sales-2026')
          .length;
      for (let i = 0; i < 2; i++) {
        const res = await get('/api/v1/apps/sales-2026/tables/orders/rows', bob);
        expect(expectProblem(res, 'FORT_ERR_FORBIDDEN').detail).toBe(
          'app.read on sales-2026 is not allowed for this user',
        );
        expect(res.body).not.toContain('orders');
      }
      expect(asked()).toBe(1);
      const denies = rig.audit().filter((e) => e.actor === 'bob' && e.action === 'app.read');
      expect(denies.map((e) => e.detail)).toMatchObject([
        { decision: 'deny', source: 'cloud' },
        { decision: 'deny', source: 'cache' },
      ]);
    });

    it('asks before it looks: 403 for an app the user may not read, present or not; 404 only to a user the cloud allows', async () => {
      expectProblem(await get('/api/v1/apps/hr-2026', bob), 'FORT_ERR_FORBIDDEN');
      expectProblem(await get('/api/v1/apps/no-such-app', bob), 'FORT_ERR_FORBIDDEN');
      expect(expectProblem(await get('/api/v1/apps/ghost-2026', alice), 'FORT_ERR_NOT_FOUND').detail).toBe(
        'no app ghost-2026 on this fort',
      );
      expect(
        expectProblem(await get('/api/v1/apps/sales-2026/tables/nope/rows', alice), 'FORT_ERR_NOT_FOUND').detail,
      ).toBe('app sales-2026 has no table nope');
    });

    it('fails closed with 503 when the cloud cannot be asked and no fresh decision is cached', async () => {
      rig.cloud.state.down = true;
      try {
        const res = await get('/api/v1/apps/empty-2026/tables', await rig.issuer.sign({ sub: 'carol' }));
        expect(expectProblem(res, 'FORT_ERR_AUTHZ_UNAVAILABLE').detail).toMatch(/^the cloud cannot be reached/);
        expect(rig.audit().at(-1)).toMatchObject({
          actor: 'carol',
          action: 'app.read',
          target: 'empty-2026',
          detail: { decision: 'deny', reason: 'authz_unavailable' },
        });
      } finally {
        rig.cloud.state.down = false;
      }
    });

    it('queues a reload for a user the cloud allows (joining one already queued), and none for one it denies', async () => {
      const first = await call(alice, { method: 'POST', url: '/api/v1/apps/sales-2026/reloads' });
      expect(first.statusCode).toBe(202);
      const { reload } = first.json<{ reload: { id: string } }>();
      expect(first.json()).toEqual({
        reload: { id: expect.stringMatching(UUID), appId: 'sales-2026', state: 'queued' },
        coalesced: false,
      });
      expect((await call(alice, { method: 'POST', url: '/api/v1/apps/sales-2026/reloads' })).json()).toEqual({
        reload: { id: reload.id, appId: 'sales-2026', state: 'queued' },
        coalesced: true,
      });
      expectProblem(await call(bob, { method: 'POST', url: '/api/v1/apps/sales-2026/reloads' }), 'FORT_ERR_FORBIDDEN');
      expectProblem(
        await call(alice, { method: 'POST', url: '/api/v1/apps/empty-2026/reloads' }),
        'FORT_ERR_FORBIDDEN',
      );
      expect(rig.reloads.queue.list({}).map((r) => ({ appId: r.appId, source: r.source }))).toEqual([
        { appId: 'sales-2026', source: 'user:alice' },
      ]);
    });
  });

  describe("validation: 400 with the catalogue's problem, naming the field", () => {
    const cases: [string, string, RegExp][] = [
      ['limit 0', '/api/v1/apps/sales-2026/tables/orders/rows?limit=0', /^limit: /],
      ['limit over 1000', '/api/v1/apps/sales-2026/tables/orders/rows?limit=1001', /^limit: /],
      ['negative offset', '/api/v1/apps/sales-2026/tables/orders/rows?offset=-1', /^offset: /],
      ['limit not a number', '/api/v1/apps/sales-2026/tables/orders/rows?limit=ten', /^limit: /],
      ['an unknown query parameter', '/api/v1/apps/sales-2026/tables/orders/rows?sort=id', /^request: .*sort/],
    ];
    it.each(cases)('%s', async (_name, url, detail) => {
      const asked = rig.cloud.asked.length;
      expect(expectProblem(await get(url, alice), 'FORT_ERR_BAD_REQUEST').detail).toMatch(detail);
      // Refused before the cloud is asked.
      expect(rig.cloud.asked.length).toBe(asked);
    });

    it('authenticates first: a bad request without a token is a 401', async () => {
      expectRefusedToken(
        await get('/api/v1/apps/sales-2026/tables/orders/rows?limit=0'),
        'missing_token',
        undefined,
        'GET /api/v1/apps/sales-2026/tables/orders/rows',
      );
    });

    it('answers bad JSON with 400 and another content type with 415, both problems', async () => {
      const url = '/api/v1/apps/sales-2026/reloads';
      const bad = await call(alice, {
        method: 'POST',
        url,
        payload: '{"now": ',
        headers: { 'content-type': 'application/json' },
      });
      expect(expectProblem(bad, 'FORT_ERR_BAD_REQUEST').detail).toMatch(/not valid JSON/);
      const xml = await call(alice, {
        method: 'POST',
        url,
        payload: '<now/>',
        headers: { 'content-type': 'application/xml' },
      });
      expect(expectProblem(xml, 'FORT_ERR_BAD_REQUEST', 415).detail).toBe(
        'POST /api/v1/apps/:id/reloads takes application/json, not application/xml',
      );
    });
  });

  describe('problems and plumbing', () => {
    it('answers unknown routes 404 without echoing the query string', async () => {
      const res = await get('/api/v1/nope?access_token=secret-in-url');
      expect(expectProblem(res, 'FORT_ERR_NOT_FOUND').detail).toBe('GET /api/v1/nope');
      expect(res.body).not.toContain('secret-in-url');
      expect(
        expectProblem(await call(alice, { method: 'DELETE', url: '/api/v1/apps/sales-2026' }), 'FORT_ERR_NOT_FOUND')
          .detail,
      ).toBe('DELETE /api/v1/apps/sales-2026');
    });

    it("gives every problem the request id of its x-request-id header and the API's headers", async () => {
      const res = await get('/api/v1/apps');
      expect(res.json().requestId).toBe(res.headers['x-request-id']);
      expect(res.headers['x-request-id']).toMatch(UUID);
      expect(res.headers).toMatchObject({
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
      });
    });

    it('refuses a body over 64 KiB with 413 naming the limit', async () => {
      const res = await call(alice, {
        method: 'POST',
        url: '/api/v1/apps/sales-2026/reloads',
        payload: JSON.stringify({ pad: 'x'.repeat(70 * 1024) }),
        headers: { 'content-type': 'application/json' },
      });
      expect(expectProblem(res, 'FORT_ERR_TOO_LARGE').detail).toBe(
        'the body of POST /api/v1/apps/:id/reloads is limited to 65536 bytes',
      );
    });

    it('reports health, and 503 while draining', async () => {
      expect((await get('/health')).json()).toEqual({ status: 'ok' });
      rig.draining.now = true;
      try {
        expect(expectProblem(await get('/health'), 'FORT_ERR_DRAINING').detail).toBe('the agent is restarting');
      } finally {
        rig.draining.now = false;
      }
    });

    it('answers CORS preflights for the configured hub origin only', async () => {
      const preflight = (origin: string) =>
        rig.app.inject({
          method: 'OPTIONS',
          url: '/api/v1/apps',
          headers: {
            origin,
            'access-control-request-method': 'GET',
            'access-control-request-headers': 'authorization',
          },
        });
      const hub = await preflight('https://hub.example');
      expect(hub.headers).toMatchObject({
        'access-control-allow-origin': 'https://hub.example',
        'access-control-allow-headers': 'authorization, content-type',
      });
      expect((await preflight('https://evil.example')).headers['access-control-allow-origin']).toBeUndefined();
    });

    it('serves app ids up to 128 characters; a longer path segment or bad percent-encoding is a problem that does not echo the path', async () => {
      const longest = 'a'.repeat(128);
      const served = await get(`/api/v1/apps/${longest}`, alice);
      expect(expectProblem(served, 'FORT_ERR_FORBIDDEN').detail).toBe(
        `app.read on ${longest} is not allowed for this user`,
      );
      const refused: [string, number, string][] = [
        [`/api/v1/apps/${'b'.repeat(129)}`, 414, 'bbbbbbbb'],
        ['/api/v1/apps/sales%E0%A4%A', 400, 'sales'],
      ];
      for (const [url, status, echo] of refused) {
        const res = await get(url, alice);
        expectProblem(res, 'FORT_ERR_BAD_REQUEST', status);
        expect(res.body).not.toContain(echo);
        expect(res.headers).toMatchObject({ 'cache-control': 'no-store', 'x-request-id': res.json().requestId });
      }
    });

    it('was built without a warning (no deprecated Fastify option)', () => {
      expect(warnings).toEqual([]);
    });

    it('serves its OpenAPI document with every data route', async () => {
      const doc = (await get('/api/v1/openapi.json')).json<{
        info: { version: string };
        paths: Record<string, unknown>;
      }>();
      expect(doc.info.version).toBe('1.2.3');
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining([
          '/api/v1/apps',
          '/api/v1/apps/{id}',
          '/api/v1/apps/{id}/tables',
          '/api/v1/apps/{id}/tables/{table}/rows',
          '/api/v1/apps/{id}/reloads',
          '/api/v1/apps/{id}/schema',
          '/api/v1/apps/{id}/query',
          '/api/v1/apps/{id}/fields/{field}/values',
          '/api/v1/apps/{id}/export',
        ]),
      );
    });
  });
});

describe('client API without [api.auth] and [cloud] (inject)', () => {
  it('answers the data routes 503 not configured, and still serves health', async () => {
    const rig = await clientApiRig(await clientZonePki(), { data: false });
    try {
      const token = await rig.issuer.sign();
      for (const [method, url] of [
        ['GET', '/api/v1/apps'],
        ['GET', '/api/v1/apps/sales-2026/tables/orders/rows'],
        ['POST', '/api/v1/apps/sales-2026/reloads'],
      ] as const) {
        const res = await rig.app.inject({ method, url, headers: { authorization: `Bearer ${token}` } });
        expect(expectProblem(res, 'FORT_ERR_NOT_CONFIGURED').detail).toBe(
          'user authentication ([api.auth] and [cloud]) is not configured on this fort',
        );
      }
      expect((await rig.app.inject({ url: '/health' })).statusCode).toBe(200);
      expect(rig.cloud.asked).toEqual([]);
    } finally {
      await rig.close();
    }
  });
});

describe('client API rate limits (inject)', () => {
  let rig: ClientApiRig;
  beforeAll(async () => {
    rig = await clientApiRig(await clientZonePki(), {
      api: { rate_limit: { per_ip_per_minute: 10, per_user_per_minute: 10 } },
    });
  });
  afterAll(() => rig?.close());

  /** Status of `n` requests, the last one's answer kept. */
  async function burst(n: number, req: (i: number) => InjectOptions) {
    const statuses: number[] = [];
    let last: LightMyRequestResponse | undefined;
    for (let i = 0; i < n; i++) {
      last = await rig.app.inject(req(i));
      statuses.push(last.statusCode);
    }
    return { statuses, last: last! };
  }

  it('limits requests per IP, then 429 with retry-after; other addresses are not affected', async () => {
    const { statuses, last } = await burst(11, () => ({ url: '/health', remoteAddress: '192.0.2.1' }));
    expect(statuses).toEqual([...Array<number>(10).fill(200), 429]);
    expect(expectProblem(last, 'FORT_ERR_RATE_LIMITED').detail).toBe('rate limit exceeded; see retry-after');
    expect(Number(last.headers['retry-after'])).toBeGreaterThan(0);
    expect((await rig.app.inject({ url: '/health', remoteAddress: '192.0.2.2' })).statusCode).toBe(200);
  });

  it('limits requests per user across addresses, then 429 with retry-after; other users are not affected', async () => {
    const alice = await rig.issuer.sign();
    const bob = await rig.issuer.sign({ sub: 'bob' });
    const apps = (token: string, address: string): InjectOptions => ({
      url: '/api/v1/apps',
      remoteAddress: address,
      headers: { authorization: `Bearer ${token}` },
    });
    // A new address each time: only the per-user limit can trip.
    const { statuses, last } = await burst(11, (i) => apps(alice, `198.51.100.${i + 1}`));
    expect(statuses).toEqual([...Array<number>(10).fill(200), 429]);
    expect(expectProblem(last, 'FORT_ERR_RATE_LIMITED').detail).toBe('rate limit exceeded; see retry-after');
    expect(Number(last.headers['retry-after'])).toBeGreaterThan(0);
    expect((await rig.app.inject(apps(bob, '198.51.100.200'))).statusCode).toBe(200);
  });
});
