import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyReply } from 'fastify';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { sendProblem } from '../../../lib/http-problem.js';
import { testPki } from '../../helpers/fort.js';
import { launchChromium } from '../../helpers/browser.js';
import { cloudRequest, TEST_CLIENT_ID, testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';

/**
 * The hub page in a real Chromium that trusts the dev CAs the way a managed browser would,
 * against a stand-in fort that checks the user token with the dev cloud's JWKS and answers
 * CORS like the fort's client API contract says.
 */
async function stubFort(pki: PkiPaths, dev: TestDevCloud, hubOrigin: string) {
  const keys = createLocalJWKSet(
    (await cloudRequest(dev.apiUrl, dev.ca, 'GET', '/.well-known/jwks.json')).json() as JSONWebKeySet,
  );
  const app = Fastify({
    https: { cert: readFileSync(pki.clientZone.clientApiCert), key: readFileSync(pki.clientZone.clientApiKey) },
  });
  const seen: string[] = [];
  app.addHook('onRequest', async (req, reply) => {
    if (req.headers.origin === hubOrigin)
      reply.header('access-control-allow-origin', hubOrigin).header('vary', 'origin');
    if (req.method === 'OPTIONS') {
      return reply
        .code(204)
        .header('access-control-allow-methods', 'GET')
        .header('access-control-allow-headers', 'authorization')
        .send();
    }
    seen.push(req.url);
    try {
      const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
      const { payload } = await jwtVerify(m?.[1] ?? '', keys, {
        issuer: dev.issuer,
        audience: `fort:${TEST_CLIENT_ID}`,
        algorithms: ['ES256'],
      });
      if (payload['tenant'] !== 't1') return forbidden(reply);
    } catch {
      return sendProblem(reply.header('www-authenticate', 'Bearer'), 'FORT_ERR_UNAUTHENTICATED');
    }
  });
  const forbidden = (reply: FastifyReply) => sendProblem(reply, 'FORT_ERR_FORBIDDEN');
  app.get('/api/v1/apps', async () => ({
    apps: [
      { id: 'sales-2026', name: 'Sales 2026', space: 'sales' },
      { id: 'hr-2026', name: 'HR 2026', space: 'hr' },
    ],
  }));
  app.get<{ Params: { id: string } }>('/api/v1/apps/:id/tables', async (req, reply) =>
    req.params.id === 'sales-2026'
      ? {
          tables: [
            { name: 'orders', rowCount: 2 },
            { name: 'customers', rowCount: 1 },
          ],
        }
      : forbidden(reply),
  );
  app.get<{ Params: { table: string }; Querystring: { limit?: string } }>(
    '/api/v1/apps/sales-2026/tables/:table/rows',
    async (req) =>
      req.params.table === 'orders'
        ? {
            columns: ['id', 'customer', 'amount'],
            rows: [
              [1, '<img src=x onerror=alert(1)>', 10.5],
              [2, null, { eur: 3 }],
            ],
            offset: 0,
            limit: Number(req.query.limit),
            total: 2,
          }
        : { columns: ['name'], rows: [['Acme']], offset: 0, limit: Number(req.query.limit), total: 1 },
  );
  // In this process: port 0, and the port it bound (nothing else needs it before it listens).
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { url: `https://127.0.0.1:${port}`, seen, close: () => app.close() };
}

describe('dev cloud hub page (Chromium)', () => {
  let pki: PkiPaths;
  let dev: TestDevCloud;
  let fort: Awaited<ReturnType<typeof stubFort>>;
  let browser: Browser;
  let page: Page;
  const cspViolations: string[] = [];
  beforeAll(async () => {
    pki = await testPki();
    dev = await testDevCloud(pki);
    fort = await stubFort(pki, dev, dev.apiUrl);
    browser = await launchChromium(pki);
    page = await browser.newPage();
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
  });
  afterAll(async () => {
    await browser?.close();
    await fort?.close();
    await dev?.stop();
  });

  it('logs in, lists the fort apps, shows a table of rows, and reports fort errors with status and code', async () => {
    await page.goto(`${dev.apiUrl}/hub?fort=${encodeURIComponent(fort.url)}`);
    expect(await page.inputValue('#fort')).toBe(fort.url);
    await page.fill('#user', 'alice');
    await page.fill('#tenant', 't1');
    await page.click('#login');
    await page.click('[data-app-id="sales-2026"]');
    await page.waitForSelector('#rows[data-table="orders"]');
    expect(await page.locator('#rows th').allTextContents()).toEqual(['id', 'customer', 'amount']);
    // Data from a fort is text, never markup.
    expect(await page.locator('#rows tbody tr').first().locator('td').allTextContents()).toEqual([
      '1',
      '<img src=x onerror=alert(1)>',
      '10.5',
    ]);
    expect(await page.locator('#rows tbody tr').nth(1).locator('td').allTextContents()).toEqual(['2', '', '{"eur":3}']);
    expect(fort.seen).toContain('/api/v1/apps/sales-2026/tables/orders/rows?limit=50');

    await page.click('[data-table="customers"]');
    await page.waitForSelector('#rows[data-table="customers"]');
    expect(await page.locator('#rows td').allTextContents()).toEqual(['Acme']);
    expect(await page.isVisible('#error')).toBe(false);

    await page.click('[data-app-id="hr-2026"]');
    await page.waitForSelector('#error:visible');
    expect(await page.textContent('#error')).toBe('HTTP 403 FORT_ERR_FORBIDDEN: Forbidden');

    await page.fill('#tenant', 't9');
    await page.click('#login');
    // The click handler hides the old error and clears the lists before its first await.
    await page.waitForSelector('#error:visible');
    // A tenant without a fort gets no token at all: the cloud mints tokens for one fort only.
    expect(await page.textContent('#error')).toBe(
      'HTTP 400 FORT_ERR_BAD_REQUEST: fort: name the fort the token is for (tenant t9 has 0)',
    );
    expect(await page.locator('#apps li').count()).toBe(0);
    expect(cspViolations).toEqual([]);
  });
});
