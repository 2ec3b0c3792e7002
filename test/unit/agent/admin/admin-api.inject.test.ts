import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import type { InjectOptions } from 'fastify';
import type { PkiPaths } from '../../../../lib/pki/layout.js';
import { enforceRoles, type AdminRole } from '../../../../agent/admin/roles.js';
import {
  ADMIN_POLICY,
  adminApiRig,
  headerPeerOf,
  TEST_PEER_HEADER,
  trustZonePki,
  type AdminApiRig,
} from '../../../helpers/admin-api.js';
import { expectProblem, processWarnings, PROBLEM_JSON } from '../../../helpers/inject.js';

/**
 * A request to each admin route that its handler answers without side effects beyond the
 * agent's own state, and the status it answers to a caller the route allows. Bodies that would
 * act (pair, update identity, register an app) are invalid on purpose: 400 shows the route ran.
 */
const SAMPLE: Record<string, { req: InjectOptions; allowed: number }> = {
  'GET /admin/v1/health': { req: { method: 'GET', url: '/admin/v1/health' }, allowed: 200 },
  'GET /admin/v1/version': { req: { method: 'GET', url: '/admin/v1/version' }, allowed: 200 },
  'POST /admin/v1/drain': { req: { method: 'POST', url: '/admin/v1/drain' }, allowed: 202 },
  'POST /admin/v1/update-identity': {
    req: { method: 'POST', url: '/admin/v1/update-identity', payload: {} },
    allowed: 400,
  },
  'PUT /admin/v1/update-state': { req: { method: 'PUT', url: '/admin/v1/update-state', payload: {} }, allowed: 400 },
  'GET /admin/v1/update-state': { req: { method: 'GET', url: '/admin/v1/update-state' }, allowed: 200 },
  'GET /admin/v1/metrics': { req: { method: 'GET', url: '/admin/v1/metrics' }, allowed: 200 },
  'GET /admin/v1/certs': { req: { method: 'GET', url: '/admin/v1/certs' }, allowed: 200 },
  'GET /admin/v1/events/dead': { req: { method: 'GET', url: '/admin/v1/events/dead' }, allowed: 200 },
  'GET /admin/v1/audit': { req: { method: 'GET', url: '/admin/v1/audit?since=2020-01-01T00:00:00Z' }, allowed: 200 },
  'POST /admin/v1/apps': { req: { method: 'POST', url: '/admin/v1/apps', payload: {} }, allowed: 400 },
  'GET /admin/v1/apps': { req: { method: 'GET', url: '/admin/v1/apps' }, allowed: 200 },
  'GET /admin/v1/reloads': { req: { method: 'GET', url: '/admin/v1/reloads' }, allowed: 200 },
  'POST /admin/v1/reloads': { req: { method: 'POST', url: '/admin/v1/reloads', payload: {} }, allowed: 400 },
  'POST /admin/v1/reloads/:id/cancel': {
    req: { method: 'POST', url: `/admin/v1/reloads/${randomUUID()}/cancel` },
    allowed: 404,
  },
  'POST /admin/v1/pair': { req: { method: 'POST', url: '/admin/v1/pair', payload: {} }, allowed: 400 },
  // An unpaired fort: the real pairing operations refuse with 409 before any cloud call.
  'POST /admin/v1/unpair': { req: { method: 'POST', url: '/admin/v1/unpair', payload: {} }, allowed: 409 },
  'POST /admin/v1/rotate-keys': { req: { method: 'POST', url: '/admin/v1/rotate-keys' }, allowed: 409 },
  'POST /admin/v1/reload-certs': { req: { method: 'POST', url: '/admin/v1/reload-certs' }, allowed: 200 },
  'PUT /admin/v1/log-level': { req: { method: 'PUT', url: '/admin/v1/log-level', payload: {} }, allowed: 400 },
  'GET /admin/v1/log-level': { req: { method: 'GET', url: '/admin/v1/log-level' }, allowed: 200 },
};

/** Callers by their certificate's common name (`admin.allowed_clients` has the first three), and the role each has. */
const PEERS: Record<string, AdminRole | 'not allowed' | 'no certificate'> = {
  fortctl: 'operator',
  prometheus: 'operator',
  'deployment-manager': 'deployment-manager',
  agent: 'not allowed',
  '': 'no certificate',
};
const ALLOWED_CLIENTS = ['fortctl', 'deployment-manager', 'prometheus'];

// Fastify warns once per process, when the option it deprecates is first used.
const warnings = processWarnings();

describe('admin API routes in-process (inject)', () => {
  let pki: PkiPaths;
  let rig: AdminApiRig;
  beforeAll(async () => {
    pki = await trustZonePki();
    rig = await adminApiRig(pki, { allowedClients: ALLOWED_CLIENTS, peerOf: headerPeerOf });
  });
  afterAll(() => rig?.close());

  /** A request as the caller whose certificate carries `peer` ('' = none presented). */
  const as = (peer: string, req: InjectOptions) =>
    rig.app.inject({ ...req, headers: { ...req.headers, ...(peer ? { [TEST_PEER_HEADER]: peer } : {}) } });

  describe('per-route roles: every route × every kind of caller', () => {
    it('samples every route of the policy (roles.test.ts holds the policy to the routes the agent registers)', () => {
      expect(Object.keys(SAMPLE).sort()).toEqual(Object.keys(ADMIN_POLICY).sort());
    });

    it('allows exactly the roles each route declares and refuses everyone else with 403 before the route runs', async () => {
      const got: Record<string, Record<string, number>> = {};
      const want: Record<string, Record<string, number>> = {};
      const refusals: { peer: string; route: string; detail: unknown }[] = [];
      for (const [route, { req, allowed }] of Object.entries(SAMPLE)) {
        got[route] = {};
        want[route] = {};
        for (const [peer, role] of Object.entries(PEERS)) {
          const res = await as(peer, req);
          got[route][peer] = res.statusCode;
          const ok = ADMIN_POLICY[route]!.includes(role as AdminRole);
          want[route][peer] = ok ? allowed : 403;
          if (res.statusCode === 403)
            refusals.push({ peer, route, detail: expectProblem(res, 'FORT_ERR_FORBIDDEN').detail });
        }
      }
      expect(got).toEqual(want);
      // Who was refused, and why: not admitted at all, or without the route's role.
      const roleNames = (route: string) =>
        ADMIN_POLICY[route]!.map((r) => (r === 'operator' ? 'operators (fortctl)' : 'the deployment manager')).join(
          ' and ',
        );
      for (const { peer, route, detail } of refusals) {
        const pattern = route.split(' ')[1]!;
        const expected =
          peer === ''
            ? 'client certificate not trusted: none presented'
            : peer === 'agent'
              ? 'trust-zone member agent is not allowed on the admin API'
              : `${route.split(' ')[0]} ${pattern} is for ${roleNames(route)} only, not ${peer}`;
        expect({ peer, route, detail }).toEqual({ peer, route, detail: expected });
      }
      // The table's only actions: a drain by each caller it lets drain, recorded once answered; no restart.
      await vi.waitFor(() => expect(rig.drained).toEqual(['fortctl', 'prometheus', 'deployment-manager']));
      expect(rig.restarts).toEqual([]);
    });

    it('answers HEAD with the roles of the GET it mirrors', async () => {
      const head = async (peer: string) => {
        const res = await as(peer, { method: 'HEAD', url: '/admin/v1/update-state' });
        return { status: res.statusCode, type: res.headers['content-type'], body: res.body };
      };
      expect(await head('fortctl')).toEqual({ status: 200, type: 'application/json; charset=utf-8', body: '' });
      expect(await head('deployment-manager')).toEqual({ status: 403, type: PROBLEM_JSON, body: '' });
    });

    it('answers unknown paths with 404 only to an admitted caller', async () => {
      const res = await as('deployment-manager', { method: 'GET', url: '/admin/v1/nope?x=1' });
      expect(expectProblem(res, 'FORT_ERR_NOT_FOUND').detail).toBe('GET /admin/v1/nope?x=1');
      expect(
        expectProblem(await as('agent', { method: 'GET', url: '/admin/v1/nope' }), 'FORT_ERR_FORBIDDEN').detail,
      ).toBe('trust-zone member agent is not allowed on the admin API');
      expectProblem(await as('', { method: 'GET', url: '/admin/v1/nope' }), 'FORT_ERR_FORBIDDEN');
    });

    it('logs each refusal with its reason', async () => {
      await as('agent', SAMPLE['GET /admin/v1/health']!.req);
      await as('', SAMPLE['GET /admin/v1/health']!.req);
      const refused = rig.lines
        .map((l) => JSON.parse(l) as { msg: string; reason?: string })
        .filter((l) => l.msg === 'admin request refused');
      expect(refused.map((l) => l.reason)).toContain('trust-zone member agent is not allowed on the admin API');
      expect(refused.map((l) => l.reason)).toContain('client certificate not trusted: none presented');
    });
  });

  it('was built without a warning (no deprecated Fastify option)', () => {
    expect(warnings).toEqual([]);
  });

  describe('fail closed', () => {
    it('refuses every request when the caller is read from TLS and there is no TLS socket (the production default under inject)', async () => {
      const plain = await adminApiRig(pki, { allowedClients: ALLOWED_CLIENTS });
      try {
        for (const { req } of Object.values(SAMPLE)) {
          const res = await plain.app.inject({ ...req, headers: { [TEST_PEER_HEADER]: 'fortctl' } });
          expect(expectProblem(res, 'FORT_ERR_FORBIDDEN').detail).toBe(
            'client certificate not trusted: none presented',
          );
        }
      } finally {
        await plain.close();
      }
    });

    it('refuses a route that declares no roles, to every caller', async () => {
      const app = Fastify();
      app.addHook('onRequest', async (req) => {
        const decided = headerPeerOf(req);
        if (decided.ok) req.peer = decided.peer;
      });
      let ran = 0;
      await app.register(async (scope) => {
        // Declared before the check is in place, so the start-time check cannot see it; the request-time one must.
        scope.get('/admin/v1/forgotten', async () => ++ran);
        enforceRoles(scope);
      });
      try {
        for (const peer of ['fortctl', 'deployment-manager', '']) {
          const res = await app.inject({
            url: '/admin/v1/forgotten',
            headers: peer ? { [TEST_PEER_HEADER]: peer } : {},
          });
          expect(expectProblem(res, 'FORT_ERR_FORBIDDEN').detail).toBe('GET /admin/v1/forgotten declares no roles');
        }
        expect(ran).toBe(0);
      } finally {
        await app.close();
      }
    });
  });

  describe("validation: 400 with the catalogue's problem, naming the field", () => {
    const cases: [string, InjectOptions, RegExp][] = [
      ['audit without since', { method: 'GET', url: '/admin/v1/audit' }, /^since: /],
      [
        'audit limit 0',
        { method: 'GET', url: '/admin/v1/audit?since=2020-01-01T00:00:00Z&limit=0' },
        /^limit: expected an integer 1\.\.1000$/,
      ],
      [
        'dead letters limit 1001',
        { method: 'GET', url: '/admin/v1/events/dead?limit=1001' },
        /^limit: expected an integer 1\.\.1000$/,
      ],
      ['reloads of an unknown state', { method: 'GET', url: '/admin/v1/reloads?state=sleeping' }, /^state: /],
      [
        'reload of a bad app id',
        { method: 'POST', url: '/admin/v1/reloads', payload: { appId: '../etc' } },
        /^appId: /,
      ],
      ['cancel of a reload id that is not a UUID', { method: 'POST', url: '/admin/v1/reloads/42/cancel' }, /^id: /],
      [
        'app of an unknown format',
        { method: 'POST', url: '/admin/v1/apps', payload: { format: 'yaml', definition: 'x' } },
        /^format: /,
      ],
      [
        'pairing with a plain-http cloud',
        { method: 'POST', url: '/admin/v1/pair', payload: { cloud: 'http://cloud.example', code: 'ABCD-EFGH-1234' } },
        /^cloud: expected the cloud's https URL$/,
      ],
      [
        'unpair with a string force',
        { method: 'POST', url: '/admin/v1/unpair', payload: { force: 'yes' } },
        /^force: /,
      ],
      [
        'unknown field',
        {
          method: 'POST',
          url: '/admin/v1/pair',
          payload: { cloud: 'https://c.example', code: 'ABCD-EFGH-1234', admin: true },
        },
        /^body: .*admin/,
      ],
    ];
    it.each(cases)('%s', async (_name, req, detail) => {
      const peer = req.url === '/admin/v1/update-identity' ? 'deployment-manager' : 'fortctl';
      expect(expectProblem(await as(peer, req), 'FORT_ERR_BAD_REQUEST').detail).toMatch(detail);
    });

    it("refuses the deployment manager's report with a bad step or time, and keeps the last good one", async () => {
      const res = await as('deployment-manager', {
        method: 'PUT',
        url: '/admin/v1/update-state',
        payload: { step: 'dancing', updatedAt: 'yesterday' },
      });
      expect(expectProblem(res, 'FORT_ERR_BAD_REQUEST').detail).toMatch(/^step: .*; installed: /);
      expect(rig.updateState.get().state).toBeNull();
    });

    it('answers a path the router refuses (bad percent-encoding, an overlong segment) with a problem, not echoing it', async () => {
      const refused: [string, number][] = [
        ['/admin/v1/reloads/abc%E0%A4%A/cancel', 400],
        [`/admin/v1/reloads/${'a'.repeat(101)}/cancel`, 414],
      ];
      for (const [url, status] of refused) {
        const res = await as('fortctl', { method: 'POST', url });
        expectProblem(res, 'FORT_ERR_BAD_REQUEST', status);
        expect(res.body).not.toMatch(/abc|aaaa/);
      }
    });

    it('answers bad JSON with 400 and another content type with 415, both problems', async () => {
      const bad = await as('fortctl', {
        method: 'POST',
        url: '/admin/v1/reloads',
        payload: '{"appId": ',
        headers: { 'content-type': 'application/json' },
      });
      expect(expectProblem(bad, 'FORT_ERR_BAD_REQUEST').detail).toMatch(/not valid JSON/);
      const xml = await as('fortctl', {
        method: 'POST',
        url: '/admin/v1/reloads',
        payload: '<reload/>',
        headers: { 'content-type': 'application/xml' },
      });
      expect(expectProblem(xml, 'FORT_ERR_BAD_REQUEST', 415).detail).toBe(
        'POST /admin/v1/reloads takes application/json, not application/xml',
      );
    });
  });

  describe("body limits: 413 naming the route's limit", () => {
    const limits: [string, string, 'POST' | 'PUT', string, number][] = [
      ['64 KiB on most routes', 'fortctl', 'POST', '/admin/v1/reloads', 64 * 1024],
      ['8 KiB for the update state', 'deployment-manager', 'PUT', '/admin/v1/update-state', 8 * 1024],
      // A 256 KiB definition may double in JSON escaping.
      ['516 KiB for an app', 'fortctl', 'POST', '/admin/v1/apps', 2 * 256 * 1024 + 4096],
    ];
    it.each(limits)('%s', async (_name, peer, method, url, limit) => {
      const payload = JSON.stringify({ pad: 'x'.repeat(limit) });
      const res = await as(peer, { method, url, payload, headers: { 'content-type': 'application/json' } });
      expect(expectProblem(res, 'FORT_ERR_TOO_LARGE').detail).toBe(
        `the body of ${method} ${url} is limited to ${limit} bytes`,
      );
    });

    it('256 KiB for the definition inside an app', async () => {
      const definition = `# ${'x'.repeat(300 * 1024)}`;
      const res = await as('fortctl', {
        method: 'POST',
        url: '/admin/v1/apps',
        payload: { format: 'toml', definition },
      });
      expect(expectProblem(res, 'FORT_ERR_TOO_LARGE').detail).toBe(
        `definition: ${300 * 1024 + 2} bytes; app definitions are limited to 262144 bytes (256 KiB)`,
      );
    });
  });

  describe('apps and reloads through the real registry and queue', () => {
    const definition =
      'id = "sales"\nname = "Sales"\nspace = "ops"\n[[tables]]\nname = "orders"\nconnector = "csv"\npath = "orders.csv"\ncolumns = [ { name = "id", type = "integer" } ]\n';

    it('registers, updates, lists, reloads and cancels', async () => {
      writeFileSync(join(rig.sourcesDir, 'orders.csv'), 'id\n1\n');
      const created = await as('fortctl', {
        method: 'POST',
        url: '/admin/v1/apps',
        payload: { format: 'toml', definition },
      });
      expect({ status: created.statusCode, body: created.json() }).toEqual({
        status: 201,
        body: { app: { id: 'sales', name: 'Sales', space: 'ops' }, created: true },
      });
      const updated = await as('fortctl', {
        method: 'POST',
        url: '/admin/v1/apps',
        payload: { format: 'toml', definition: definition.replace('"Sales"', '"Sales EU"') },
      });
      expect({ status: updated.statusCode, body: updated.json() }).toEqual({
        status: 200,
        body: { app: { id: 'sales', name: 'Sales EU', space: 'ops' }, created: false },
      });
      expect((await as('fortctl', { method: 'GET', url: '/admin/v1/apps' })).json()).toMatchObject({
        apps: [{ id: 'sales', name: 'Sales EU', space: 'ops', versionId: null, tables: ['orders'] }],
      });

      const started = await as('fortctl', { method: 'POST', url: '/admin/v1/reloads', payload: { appId: 'sales' } });
      expect(started.statusCode).toBe(202);
      const { reload, coalesced } = started.json<{
        reload: { id: string; appId: string; state: string; source: string };
        coalesced: boolean;
      }>();
      expect({ appId: reload.appId, state: reload.state, source: reload.source, coalesced }).toEqual({
        appId: 'sales',
        state: 'queued',
        source: 'operator:fortctl',
        coalesced: false,
      });
      expect(
        (await as('fortctl', { method: 'POST', url: '/admin/v1/reloads', payload: { appId: 'sales' } })).json(),
      ).toMatchObject({ reload: { id: reload.id }, coalesced: true });
      expect((await as('fortctl', { method: 'GET', url: '/admin/v1/reloads?app=sales' })).json()).toMatchObject({
        reloads: [{ id: reload.id, state: 'queued' }],
      });

      const cancel = { method: 'POST' as const, url: `/admin/v1/reloads/${reload.id}/cancel` };
      expect({ status: (await as('fortctl', cancel)).statusCode }).toEqual({ status: 202 });
      expect(expectProblem(await as('fortctl', cancel), 'FORT_ERR_CONFLICT').detail).toBe(
        `reload ${reload.id} has already finished`,
      );
    });

    it('refuses an invalid definition with 422 naming the field, and a reload of an unknown app with 404', async () => {
      const bad = await as('fortctl', {
        method: 'POST',
        url: '/admin/v1/apps',
        payload: { format: 'toml', definition: definition.replace('connector = "csv"', 'connector = "ftp"') },
      });
      expect(expectProblem(bad, 'FORT_ERR_DEFINITION').detail).toMatch(/tables\[0\]\.connector: /);
      expectProblem(
        await as('fortctl', { method: 'POST', url: '/admin/v1/reloads', payload: { appId: 'no-such-app' } }),
        'FORT_ERR_NOT_FOUND',
      );
    });
  });
});
