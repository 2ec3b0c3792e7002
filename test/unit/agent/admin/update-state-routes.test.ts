import { afterEach, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { registerUpdateStateRoutes } from '../../../../agent/admin/update-state-routes.js';
import { createUpdateStateHolder } from '../../../../agent/update-state.js';
import { enforceRoles } from '../../../../agent/admin/roles.js';
import type { UpdateSummary } from '../../../../lib/update-state.js';

const summary: UpdateSummary = {
  step: 'downloading',
  installed: '1.0.0',
  installedArtifact: 'fort-1.0.0',
  previous: null,
  deployment: {
    id: 'd-1',
    artifactName: 'fort-1.0.1',
    source: 'server',
    downloaded: 4096,
    target: null,
    deadline: null,
    reason: null,
  },
  lastError: null,
  updatedAt: '2026-01-02T03:04:05.000Z',
};

describe('update-state admin routes', () => {
  let app: FastifyInstance;
  afterEach(() => app?.close());

  /** The admin server's peer check, standing in for mutual TLS: the caller's common name from a header; then its role check. */
  async function rig() {
    const holder = createUpdateStateHolder(() => new Date('2026-01-02T03:04:06.000Z'));
    app = Fastify();
    app.addHook('onRequest', async (req) => {
      req.peer = { name: String(req.headers['x-peer']) } as NonNullable<typeof req.peer>;
    });
    enforceRoles(app);
    await app.register(async (scope) => registerUpdateStateRoutes(scope, holder));
    return holder;
  }
  const put = (peer: string, payload: unknown) =>
    app.inject({
      method: 'PUT',
      url: '/admin/v1/update-state',
      headers: { 'x-peer': peer },
      payload: payload as object,
    });

  it('keeps what the deployment manager reports and shows it to fortctl', async () => {
    await rig();
    expect((await app.inject({ url: '/admin/v1/update-state', headers: { 'x-peer': 'fortctl' } })).json()).toEqual({
      state: null,
      reportedAt: null,
    });
    expect(
      (await put('deployment-manager', { ...summary, reports: ['dropped: a newer deployment manager may send more'] }))
        .statusCode,
    ).toBe(204);
    expect((await app.inject({ url: '/admin/v1/update-state', headers: { 'x-peer': 'fortctl' } })).json()).toEqual({
      state: summary,
      reportedAt: '2026-01-02T03:04:06.000Z',
    });
  });

  it('takes the report from the deployment manager only', async () => {
    const holder = await rig();
    const res = await put('fortctl', summary);
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'FORT_ERR_FORBIDDEN' });
    expect(holder.get().state).toBeNull();
  });

  it('refuses an unknown step, a bad time and a large body, naming the field', async () => {
    await rig();
    const bad = await put('deployment-manager', { ...summary, step: 'dancing', updatedAt: 'yesterday' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().detail).toMatch(/^step: .*; updatedAt: /);
    expect((await put('deployment-manager', { ...summary, lastError: 'x'.repeat(9000) })).statusCode).toBe(413);
  });
});
