import { afterEach, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AppCatalog } from '../../../../agent/apps/catalog.js';
import type { Authorizer } from '../../../../agent/cloud/authorizer.js';
import type { AuditWriter } from '../../../../agent/audit/writer.js';
import type { EngineClient, RelayedAnswer } from '../../../../agent/engine/client.js';
import { registerQueryRoutes } from '../../../../agent/api/query-routes.js';
import { csvField } from '../../../../agent/api/csv-export.js';

/**
 * The query routes' own rules, with the engine and the cloud stood in (their real links are in
 * test/integration/agent/engine-*.test.ts): the per-user cap on queries in flight, and CSV
 * exports paged through the engine's keyset pages.
 */

const VERSION = { version: 'v1', tables: [{ name: 'orders', rows: 3 }] };
const catalog = {
  list: () => [],
  get: (id: string) => (id === 'sales' ? { id, name: id, space: 's', versionId: 1, updatedAt: '' } : undefined),
  currentVersionFile: () => undefined,
  currentEngineVersion: (id: string) => (id === 'sales' ? VERSION : undefined),
} satisfies AppCatalog;
const authorizer = { decide: async () => ({ allow: true, source: 'cache' }) } as unknown as Authorizer;
const audit = { write: () => {} } as unknown as AuditWriter;
const json = (body: unknown): RelayedAnswer => ({
  statusCode: 200,
  contentType: 'application/json; charset=utf-8',
  text: JSON.stringify(body),
});

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function rig(engine: Partial<EngineClient>, limits = { perUser: 2, exportMaxRows: 1000 }) {
  app = Fastify();
  app.addHook('onRequest', async (req) => {
    req.identity = { user: String(req.headers['x-user'] ?? 'alice'), tenant: 't1' };
  });
  registerQueryRoutes(app, { catalog, authorizer, audit, engine: engine as EngineClient, queryLimits: limits });
  await app.ready();
  return app;
}

describe('client API query routes', () => {
  it("runs each user's queries a few at a time, queues four times as many, refuses more (429 naming the limit); other users unaffected", async () => {
    const waiting: (() => void)[] = [];
    const a = await rig({
      query: () =>
        new Promise((resolve) =>
          waiting.push(() => resolve(json({ version: 'v1', columns: [], rows: [], next: null }))),
        ),
    });
    const ask = (user: string) =>
      a.inject({
        method: 'POST',
        url: '/api/v1/apps/sales/query',
        headers: { 'x-user': user },
        payload: { measures: [{ op: 'count' }] },
      });
    const turn = () => new Promise((r) => setImmediate(r));
    // 2 run in the engine, 8 wait their turn in the agent.
    const alices = Array.from({ length: 10 }, () => ask('alice'));
    while (waiting.length < 2) await turn();
    for (let i = 0; i < 20; i++) await turn();
    expect(waiting).toHaveLength(2);
    const refused = await ask('alice');
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.json()).toMatchObject({
      code: 'FORT_ERR_RATE_LIMITED',
      detail: expect.stringMatching(/at most 2 queries at once per user \(api.queries_per_user\), and 8 waiting/),
    });
    // Another user is not behind alice.
    const bob = ask('bob');
    while (waiting.length < 3) await turn();
    // Each answer lets the next of alice's in, until all have run.
    let answered = 0;
    while (answered < 11) {
      while (waiting.length === 0) await turn();
      waiting.shift()!();
      answered++;
    }
    expect((await Promise.all([...alices, bob])).map((r) => r.statusCode)).toEqual(Array(11).fill(200));
  });

  it('exports the whole answer as CSV through keyset pages, cut at export_max_rows with a last line saying so', async () => {
    const asked: unknown[] = [];
    const pages: Record<string, { rows: unknown[][]; next: string | null }> = {
      first: {
        rows: [
          ['north', 1],
          ['=cmd', 2],
        ],
        next: 'p2',
      },
      p2: {
        rows: [
          ['say "hi", then go', 3],
          [null, 4],
        ],
        next: null,
      },
    };
    const engine = {
      query: async (_app: string, _v: string, _t: string, spec: unknown) => {
        asked.push(spec);
        const p = pages[(spec as { after?: string }).after ?? 'first']!;
        return json({ version: 'v1', columns: [{ name: 'region' }, { name: 'n' }], ...p });
      },
    };
    const a = await rig(engine);
    const res = await a.inject({
      method: 'POST',
      url: '/api/v1/apps/sales/export',
      payload: { dimensions: ['region'], measures: [{ op: 'count', as: 'n' }], limit: 5, after: 'ignored' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toBe('attachment; filename="sales-v1.csv"');
    expect(res.body).toBe('region,n\r\nnorth,1\r\n\'=cmd,2\r\n"say ""hi"", then go",3\r\n,4\r\n');
    // Pages of the engine's largest size; the caller's own limit and cursor are not the export's.
    expect(asked).toEqual([
      { dimensions: ['region'], measures: [{ op: 'count', as: 'n' }], limit: 10_000 },
      { dimensions: ['region'], measures: [{ op: 'count', as: 'n' }], limit: 10_000, after: 'p2' },
    ]);

    await a.close();
    const cut = await rig(engine, { perUser: 2, exportMaxRows: 3 });
    const short = await cut.inject({
      method: 'POST',
      url: '/api/v1/apps/sales/export',
      payload: { dimensions: ['region'] },
    });
    expect(short.body.split('\r\n')).toEqual([
      'region,n',
      'north,1',
      "'=cmd,2",
      '"say ""hi"", then go",3',
      '# cut at 3 rows (api.export_max_rows)',
      '',
    ]);
  });

  it('an engine refusal before the first byte is the engine answer, status and problem as they came', async () => {
    const a = await rig({
      query: async () => ({
        statusCode: 400,
        contentType: 'application/problem+json',
        text: JSON.stringify({ status: 400, code: 'FORT_ERR_BAD_REQUEST', detail: 'dimensions[0]: no field "regoin"' }),
      }),
    });
    const res = await a.inject({
      method: 'POST',
      url: '/api/v1/apps/sales/export',
      payload: { dimensions: ['regoin'] },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ detail: 'dimensions[0]: no field "regoin"' });
  });

  it('CSV fields: quoted when they must be, formulas defused, numbers and booleans as they are', () => {
    expect(csvField(null)).toBe('');
    expect(csvField(-5)).toBe('-5');
    expect(csvField(true)).toBe('true');
    expect(csvField('-5')).toBe("'-5");
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvField('a\nb')).toBe('"a\nb"');
    expect(csvField('Zürich')).toBe('Zürich');
  });
});
