import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { writeFileAtomic } from '../../../lib/files.js';
import { openStore } from '../../../agent/store/database.js';
import { seedApp } from '../../helpers/apps.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import { eventually, startAgent, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import { httpsCall } from '../../helpers/https.js';
import { ATTACK_REASONS, testIssuer } from '../../helpers/jwt.js';
import type { PolicyInput } from '../../../dev-cloud/cloud-api/policy.js';

const FORT = 'fort-dev-1';
const POLICY: PolicyInput = {
  decision_ttl_seconds: 60,
  tenants: {
    t1: {
      forts: [FORT],
      users: { alice: { groups: ['analysts'] }, bob: { groups: [] }, carol: { groups: ['admins'] } },
      spaces: {
        sales: { analysts: ['app.list', 'app.read'], admins: ['app.list', 'app.read', 'app.reload'] },
        hr: { admins: ['app.list', 'app.read'] },
      },
      apps: { 'sales-2026': { space: 'sales' }, 'empty-2026': { space: 'sales' }, 'hr-2026': { space: 'hr' } },
    },
  },
};

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/** Real HTTPS to the client API, trusting only the client-zone CA. */
async function api(
  base: string,
  ca: Buffer,
  path: string,
  opts: { token?: string; method?: string; headers?: Record<string, string>; from?: string } = {},
): Promise<Res> {
  const res = await httpsCall(base, ca, opts.method ?? 'GET', path, {
    headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...opts.headers },
    ...(opts.from ? { localAddress: opts.from } : {}),
  });
  return { status: res.status, headers: res.headers, body: res.body ? (res.json() as Record<string, unknown>) : {} };
}

describe('client API: user tokens, cloud authorisation, data, audit (real agent, real dev cloud)', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud;
  let agent: Supervised;
  let base: string;
  let ca: Buffer;
  let dbPath: string;
  let forger: Awaited<ReturnType<typeof testIssuer>>;

  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { fortId: FORT, cloudAuth: true });
    dbPath = join(inst.layout.dataDir, 'agent', 'agent.db');
    const store = openStore({ path: dbPath, log: pino({ level: 'silent' }) });
    const appsDir = join(inst.layout.dataDir, 'agent', 'apps');
    seedApp(store.db, appsDir, {
      id: 'sales-2026',
      name: 'Sales 2026',
      space: 'sales',
      tables: {
        orders: {
          columns: ['id', 'customer', 'amount'],
          rows: Array.from({ length: 250 }, (_, i) => [i + 1, `c${i % 7}`, (i * 13) % 1000]),
        },
      },
    });
    seedApp(store.db, appsDir, { id: 'empty-2026', name: 'Empty 2026', space: 'sales' });
    seedApp(store.db, appsDir, {
      id: 'hr-2026',
      name: 'HR 2026',
      space: 'hr',
      tables: { salaries: { columns: ['who', 'salary'], rows: [['x', 1]] } },
    });
    store.close();
    dev = await testDevCloud(pki, { ports: inst.layout.ports, policy: POLICY });
    // A second key in the cloud's JWKS whose private half the test holds: it can sign every forgery.
    forger = await testIssuer({ issuer: dev.issuer, audience: `fort:${FORT}`, tenant: 't1' });
    dev.cloudApi.publishExtraKey(forger.jwks.keys[0]!);
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);
    base = `https://127.0.0.1:${inst.layout.ports.clientApi}`;
    ca = readFileSync(pki.clientZone.ca);
  });
  afterAll(async () => {
    await agent?.stop();
    await dev?.stop();
    inst?.cleanup();
  });

  const audit = () => {
    const db = new Database(join(dirname(dbPath), 'audit.db'), { readonly: true });
    try {
      return db.prepare('SELECT actor, action, target, detail FROM audit ORDER BY seq').all() as {
        actor: string;
        action: string;
        target: string;
        detail: string;
      }[];
    } finally {
      db.close();
    }
  };

  it('shows a user only the apps the cloud lets them list, with tables and paged rows', async () => {
    const alice = await dev.login('alice', 't1');
    const list = await api(base, ca, '/api/v1/apps', { token: alice });
    expect(list.status).toBe(200);
    expect((list.body.apps as { id: string }[]).map((a) => a.id).sort()).toEqual(['empty-2026', 'sales-2026']);
    expect(list.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const tables = await api(base, ca, '/api/v1/apps/sales-2026/tables', { token: alice });
    expect(tables.body).toEqual({ tables: [{ name: 'orders', rowCount: 250 }] });
    const page = await api(base, ca, '/api/v1/apps/sales-2026/tables/orders/rows?offset=240&limit=100', {
      token: alice,
    });
    expect(page.body).toMatchObject({ columns: ['id', 'customer', 'amount'], offset: 240, limit: 100, total: 250 });
    // Customer data: never cached, never rendered or framed, never sniffed.
    expect(page.headers).toMatchObject({
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'content-security-policy': "default-src 'none';frame-ancestors 'none'",
    });
    expect(page.headers['strict-transport-security']).toMatch(/^max-age=\d+/);
    expect((page.body.rows as unknown[][]).map((r) => r[0])).toEqual([
      241, 242, 243, 244, 245, 246, 247, 248, 249, 250,
    ]);
    const empty = await api(base, ca, '/api/v1/apps/empty-2026/tables/anything/rows', { token: alice });
    expect(empty.body).toMatchObject({ rows: [], total: 0 });
    expect(
      (await api(base, ca, '/api/v1/apps/sales-2026/tables/orders/rows?limit=5000', { token: alice })).body,
    ).toMatchObject({ status: 400, code: 'FORT_ERR_BAD_REQUEST' });
  });

  it('denies with 403 and audits allows and denies', async () => {
    const bob = await dev.login('bob', 't1');
    expect((await api(base, ca, '/api/v1/apps', { token: bob })).body).toEqual({ apps: [] });
    const denied = await api(base, ca, '/api/v1/apps/sales-2026/tables/orders/rows', { token: bob });
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ code: 'FORT_ERR_FORBIDDEN' });
    expect(denied.body.rows).toBeUndefined();
    expect(JSON.stringify(denied.body)).not.toMatch(/customer|"c1"/);
    const reload = await api(base, ca, '/api/v1/apps/sales-2026/reloads', {
      token: await dev.login('carol', 't1'),
      method: 'POST',
    });
    expect(reload.status).toBe(202);
    const rows = await eventually(
      () => {
        const a = audit();
        return a.some((e) => e.actor === 'carol') ? a : undefined;
      },
      5000,
      'audit entries',
    );
    expect(rows).toContainEqual(
      expect.objectContaining({
        actor: 'bob',
        action: 'app.read',
        target: 'sales-2026',
        detail: expect.stringContaining('"decision":"deny"'),
      }),
    );
    expect(rows).toContainEqual(
      expect.objectContaining({
        actor: 'alice',
        action: 'app.read',
        target: 'sales-2026',
        detail: expect.stringContaining('"decision":"allow"'),
      }),
    );
    expect(rows).toContainEqual(
      expect.objectContaining({
        actor: 'carol',
        action: 'app.reload',
        target: 'sales-2026',
        detail: expect.stringContaining('"decision":"allow"'),
      }),
    );
  });

  it('serves a fresh cached decision while the cloud is down, refuses (503) without one, re-asks after expiry', async () => {
    const alice = await dev.login('alice', 't1');
    const carol = await dev.login('carol', 't1');
    expect((await api(base, ca, '/api/v1/apps/sales-2026', { token: alice })).status).toBe(200); // cached now
    dev.cloudApi.setAvailable(false);
    try {
      expect((await api(base, ca, '/api/v1/apps/sales-2026', { token: alice })).status).toBe(200);
      const refused = await api(base, ca, '/api/v1/apps/hr-2026', { token: carol });
      expect(refused.status).toBe(503);
      expect(refused.body).toMatchObject({ code: 'FORT_ERR_AUTHZ_UNAVAILABLE' });
      expect(JSON.stringify(refused.body)).not.toContain('salar');
    } finally {
      dev.cloudApi.setAvailable(true);
    }
    // Short TTLs from now on: the next decision expires and is asked for again.
    dev.cloudApi.setPolicy({ ...POLICY, decision_ttl_seconds: 1 });
    const dave = await dev.login('carol', 't1');
    expect((await api(base, ca, '/api/v1/apps/hr-2026/tables', { token: dave })).status).toBe(200);
    const asked = dev.cloudApi.stats().authorize;
    await eventually(
      async () => {
        await api(base, ca, '/api/v1/apps/hr-2026/tables', { token: dave });
        return dev.cloudApi.stats().authorize > asked ? true : undefined;
      },
      10_000,
      'the expired decision to be asked again',
    );
  });

  it('signs a new client assertion (fresh jti) for every access token: the cloud never sees a replay', async () => {
    const before = dev.cloudApi.stats();
    for (let i = 0; i < 5; i++) {
      dev.cloudApi.revokeAccessTokens(); // the next authorize gets 401: the agent must fetch a new token
      // A user never seen before: no cached decision, so the agent has to ask (and is told no).
      const res = await api(base, ca, '/api/v1/apps/sales-2026', { token: await dev.login(`jti-user-${i}`, 't1') });
      expect(res.body).toMatchObject({ status: 403, code: 'FORT_ERR_FORBIDDEN' });
    }
    const after = dev.cloudApi.stats();
    expect(after.tokensIssued - before.tokensIssued).toBe(5);
    // The dev cloud refuses any jti it has seen before (replay): none was refused.
    expect(after.tokensRefused).toBe(before.tokensRefused);
  });

  it('answers CORS only for the configured cloud origin', async () => {
    const allowed = `https://127.0.0.1:${inst.layout.ports.cloud}`;
    const preflight = (origin: string) =>
      api(base, ca, '/api/v1/apps', {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
      });
    const ok = await preflight(allowed);
    expect(ok.headers['access-control-allow-origin']).toBe(allowed);
    expect(String(ok.headers['access-control-allow-headers'])).toContain('authorization');
    const evil = await preflight('https://evil.example');
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
  });

  /** Anonymous refusals audited from `ip`: the first per reason and minute as it happens (denials.ts). */
  const refusalsFrom = (ip: string) =>
    audit()
      .filter((e) => e.action === 'auth')
      .map((e) => ({ ...e, detail: JSON.parse(e.detail) as { reason: string; ip: string; count?: number } }))
      .filter((e) => e.detail.ip === ip);

  it('refuses the whole JWT attack suite over HTTPS: 401, no data, an audit entry with each reason', async () => {
    expect(
      (await api(base, ca, '/api/v1/apps/sales-2026/tables/orders/rows', { token: await forger.sign() })).status,
    ).toBe(200); // the key is trusted
    const expected = ATTACK_REASONS;
    const attacks = await forger.attacks();
    expect(Object.keys(attacks).sort()).toEqual(Object.keys(expected).sort());
    // A source address of its own: the first refusal per reason from it is audited at once.
    const from = '127.0.0.61';
    for (const [name, token] of Object.entries(attacks)) {
      const res = await api(base, ca, '/api/v1/apps/sales-2026/tables/orders/rows', { token, from });
      expect({ name, status: res.status, code: res.body.code }).toEqual({
        name,
        status: 401,
        code: 'FORT_ERR_UNAUTHENTICATED',
      });
      expect(res.headers['www-authenticate']).toBe(
        `Bearer error="invalid_token", error_description="${expected[name]}"`,
      );
      expect(res.body.rows).toBeUndefined();
    }
    const distinct = [...new Set(Object.keys(attacks).map((n) => expected[n]))];
    const reasons = await eventually(
      () => {
        const r = refusalsFrom(from);
        return new Set(r.map((e) => e.detail.reason)).size >= distinct.length ? r : undefined;
      },
      5000,
      'an audit entry per reason',
    );
    expect(reasons.filter((e) => e.detail.count === undefined).map((e) => e.detail.reason)).toEqual(distinct);
    expect(
      reasons.every((e) => e.actor === 'anonymous' && e.target === 'GET /api/v1/apps/sales-2026/tables/orders/rows'),
    ).toBe(true);
  });

  it('a flood of refused requests from one host adds rows per minute to the audit trail, not per request', async () => {
    const from = '127.0.0.62';
    for (let i = 0; i < 300; i++)
      expect((await api(base, ca, `/api/v1/apps?i=${i}`, { token: 'not-a-jwt', from })).status).toBe(401);
    const rows = await eventually(
      () => {
        const r = refusalsFrom(from);
        return r.length > 0 ? r : undefined;
      },
      5000,
      'the first refusal audited',
    );
    // The first at once; the repeats as one row when the minute ends (two, and a first again, if it ended meanwhile).
    expect(rows.length).toBeLessThanOrEqual(3);
    expect(rows[0]).toMatchObject({ actor: 'anonymous', target: 'GET /api/v1/apps', detail: { reason: 'malformed' } });
  });

  it('refuses tokens with 401, a problem body, no data, and an audit entry', async () => {
    const alice = await dev.login('alice', 't1');
    const from = '127.0.0.63';
    const cases: [string, Parameters<typeof api>[3]][] = [
      ['/api/v1/apps', {}],
      ['/api/v1/apps', { token: `${alice.slice(0, -8)}AAAAAAAA` }],
      [`/api/v1/apps?access_token=${alice}`, {}],
      // The cloud would not mint this (fort-dev-1 is not other-tenant's): signed with a key its JWKS serves.
      ['/api/v1/apps', { token: await forger.sign({ tenant: 'other-tenant' }) }],
    ];
    for (const [path, opts] of cases) {
      const res = await api(base, ca, path, { ...opts, from });
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ code: 'FORT_ERR_UNAUTHENTICATED' });
      expect(res.headers['www-authenticate']).toMatch(/^Bearer error="invalid_token"/);
      expect(res.body.apps).toBeUndefined();
    }
    const reasons = await eventually(
      () => {
        const r = refusalsFrom(from).map((e) => e.detail.reason);
        return r.length >= 4 ? r : undefined;
      },
      5000,
      'auth audit entries',
    );
    expect(reasons).toEqual(['missing_token', 'bad_signature', 'token_in_query', 'wrong_tenant']);
    // Tokens never reach the log.
    expect(agent.stdout.join('\n')).not.toContain(alice.split('.')[2]);
  });

  it('refuses a token the cloud minted for another fort of the same tenant (its audience)', async () => {
    dev.cloudApi.setPolicy({ ...POLICY, tenants: { t1: { ...POLICY.tenants!.t1!, forts: [FORT, 'fort-dev-2'] } } });
    try {
      const mine = await dev.login('alice', 't1', undefined, FORT);
      const theirs = await dev.login('alice', 't1', undefined, 'fort-dev-2');
      expect((await api(base, ca, '/api/v1/apps', { token: mine })).status).toBe(200);
      const res = await api(base, ca, '/api/v1/apps', { token: theirs, from: '127.0.0.64' });
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token", error_description="wrong_audience"');
      expect(res.body.apps).toBeUndefined();
    } finally {
      dev.cloudApi.setPolicy(POLICY);
    }
  });

  it('serves its OpenAPI document and the viewer page', async () => {
    const doc = await api(base, ca, '/api/v1/openapi.json');
    expect(doc.body).toMatchObject({ openapi: '3.1.0' });
    expect(Object.keys(doc.body.paths as object)).toContain('/api/v1/apps/{id}/tables/{table}/rows');
    const viewer = await httpsCall(base, ca, 'GET', '/');
    expect(viewer.status).toBe(200);
    expect(viewer.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(viewer.body).toContain('<script src="/viewer.js"');
    const csp = String(viewer.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-eval');
  });
});

describe('client API against a rogue cloud endpoint', () => {
  it('refuses a cloud whose certificate is from another CA: no keys, no decisions, no data', async () => {
    const pki = await testPki();
    const inst = await testInstallation(pki, { fortId: FORT, cloudAuth: true });
    // Trust the installation's own root for the cloud instead of the cloud's CA: the dev cloud is then a stranger.
    const toml = readFileSync(inst.files.agent, 'utf8').replace(
      /^ca = ".*cloud-server\/ca\.pem"$/m,
      `ca = "${pki.trustZone.ca}"`,
    );
    expect(toml).toContain(`ca = "${pki.trustZone.ca}"`);
    writeFileAtomic(inst.files.agent, toml, 0o644);
    const dev = await testDevCloud(pki, { ports: inst.layout.ports, policy: POLICY });
    const agent = await startAgent(inst.files.agent);
    try {
      await agent.waitReady(20_000);
      const res = await api(
        `https://127.0.0.1:${inst.layout.ports.clientApi}`,
        readFileSync(pki.clientZone.ca),
        '/api/v1/apps',
        { token: await dev.login('alice', 't1') },
      );
      // Fail closed, and not as the token's fault: without the keys no token can be checked.
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ code: 'FORT_ERR_AUTHN_UNAVAILABLE' });
      expect(res.headers['www-authenticate']).toBeUndefined();
      expect(dev.cloudApi.stats().authorize).toBe(0);
      await eventually(
        () =>
          agent.stdout.some((l) => l.includes('cloud JWKS unreachable') && /certificate/i.test(l)) ? true : undefined,
        5000,
        'a log line saying why the JWKS cannot be fetched',
      );
    } finally {
      await agent.stop();
      await dev.stop();
      inst.cleanup();
    }
  });
});
