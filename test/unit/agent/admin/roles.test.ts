import { afterEach, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { registerAdminRoutes, type AdminRoutesDeps } from '../../../../agent/admin/server.js';
import { enforceRoles, OPERATOR_ONLY } from '../../../../agent/admin/roles.js';
import { ADMIN_POLICY as POLICY } from '../../../helpers/admin-api.js';

/** Never called: only the routes they make appear are looked at. */
const unused = <T>() => ({}) as T;
// Required: a new optional dependency (a new route module) must be given here, so its routes are checked too.
const everything: Required<AdminRoutesDeps> = {
  health: unused(),
  info: unused(),
  drain: unused(),
  audit: unused(),
  deadLetters: unused(),
  certificates: unused(),
  reloadCerts: unused(),
  metrics: unused(),
  now: unused(),
  reloads: unused(),
  pairing: unused(),
  updateState: unused(),
  logLevels: unused(),
  deploymentManagerLevel: unused(),
};

describe('admin API roles', () => {
  let app: FastifyInstance;
  afterEach(() => app?.close());

  it('every registered route declares its roles, as the policy says', async () => {
    app = Fastify();
    const declared = new Map<string, unknown>();
    app.addHook('onRoute', (r) => {
      declared.set(`${String(r.method)} ${r.url}`, r.config?.roles);
    });
    await app.register(async (scope) => registerAdminRoutes(scope, everything));
    await app.ready();
    // Fastify's own HEAD twin of each GET carries the GET's options.
    const heads = Object.fromEntries(
      Object.entries(POLICY)
        .filter(([k]) => k.startsWith('GET '))
        .map(([k, v]) => [k.replace(/^GET /, 'HEAD '), v]),
    );
    expect(Object.fromEntries(declared)).toEqual({ ...POLICY, ...heads });
  });

  it('fails closed: a route without roles stops the server from starting', async () => {
    app = Fastify();
    await expect(
      app.register(async (scope) => {
        enforceRoles(scope);
        scope.get('/admin/v1/forgotten', async () => 'secret');
      }),
    ).rejects.toThrow('admin route GET /admin/v1/forgotten declares no roles (config.roles)');
  });

  it('refuses a peer without the role, before the route runs', async () => {
    app = Fastify();
    // Stands in for the mutual-TLS peer check: the caller's common name from a header.
    app.addHook('onRequest', async (req) => {
      req.peer = { name: String(req.headers['x-peer']), fingerprint256: '' };
    });
    let ran = 0;
    await app.register(async (scope) => {
      enforceRoles(scope);
      scope.post('/admin/v1/apps', OPERATOR_ONLY, async () => ++ran);
    });
    const as = (peer: string) => app.inject({ method: 'POST', url: '/admin/v1/apps', headers: { 'x-peer': peer } });
    const refused = await as('deployment-manager');
    expect(refused.statusCode).toBe(403);
    expect(refused.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(refused.json()).toMatchObject({
      code: 'FORT_ERR_FORBIDDEN',
      detail: 'POST /admin/v1/apps is for operators (fortctl) only, not deployment-manager',
    });
    expect(ran).toBe(0);
    // Any other allowed name is an operator (fortctl, a metrics scraper).
    expect((await as('fortctl')).statusCode).toBe(200);
    expect((await as('prometheus')).statusCode).toBe(200);
    expect(ran).toBe(2);
  });
});
