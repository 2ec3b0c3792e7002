import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { openStore } from '../../../agent/store/database.js';
import { seedApp } from '../../helpers/apps.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import type { PolicyInput } from '../../../dev-cloud/cloud-api/policy.js';
import { REPO, startAgent, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import { httpsCall } from '../../helpers/https.js';
import { launchChromium } from '../../helpers/browser.js';

/**
 * The fort's client API in a real Chromium (trusting the dev CAs through NSS, as a managed
 * browser would), against the real agent and the real dev cloud: the cloud's hub page reads the
 * fort cross-origin, a page on any other origin is stopped by CORS, and the fort's own viewer
 * signs in through the cloud's login redirect.
 */

const FORT = 'fort-dev-1';
const POLICY: PolicyInput = {
  decision_ttl_seconds: 60,
  tenants: {
    t1: {
      forts: [FORT],
      users: { alice: { groups: ['analysts'] } },
      spaces: { sales: { analysts: ['app.list', 'app.read'] }, hr: { admins: ['app.list', 'app.read'] } },
      apps: { 'sales-2026': { space: 'sales' }, 'hr-2026': { space: 'hr' } },
    },
  },
};
const XSS = '<img src=x onerror=alert(1)>';
/** 60 orders: more than the one page of 50 both pages ask for. */
const ORDERS = Array.from({ length: 60 }, (_, i) => [
  i + 1,
  i === 0 ? XSS : `customer-${i + 1}`,
  i === 1 ? null : (i + 1) * 10.5,
]);
const SHOTS = join(REPO, 'test-results', 'browser');

/** The first 50 of ORDERS on screen, as text (fort data is never markup), in the hub or the viewer. */
async function expectFirstOrdersPage(page: Page) {
  expect(await page.locator('#rows th').allTextContents()).toEqual(['id', 'customer', 'amount']);
  const rows = page.locator('#rows tbody tr');
  expect(await rows.count()).toBe(50);
  expect(await rows.nth(0).locator('td').allTextContents()).toEqual(['1', XSS, '10.5']);
  expect(await rows.nth(1).locator('td').allTextContents()).toEqual(['2', 'customer-2', '']);
  expect(await rows.nth(49).locator('td').allTextContents()).toEqual(['50', 'customer-50', '525']);
}

/** A page on an origin the fort does not allow: it tries to read the fort's apps with a valid token. */
async function foreignSite(pki: PkiPaths) {
  const app: FastifyInstance = Fastify({
    https: { cert: readFileSync(pki.clientZone.clientApiCert), key: readFileSync(pki.clientZone.clientApiKey) },
  });
  // CSP lets the page connect anywhere over https, so only CORS can stop the read.
  const headers = { 'content-security-policy': "default-src 'self'; connect-src https:", 'cache-control': 'no-store' };
  app.get('/', async (_req, reply) =>
    reply
      .headers(headers)
      .type('text/html; charset=utf-8')
      .send(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not the hub</title><script src="/probe.js" defer></script></head><body><p id="result"></p></body></html>',
      ),
  );
  app.get('/probe.js', async (_req, reply) =>
    reply.headers(headers).type('text/javascript; charset=utf-8').send(`'use strict';
(async () => {
  const p = new URLSearchParams(location.hash.slice(1));
  const out = document.getElementById('result');
  try {
    const res = await fetch(p.get('fort') + '/api/v1/apps', { headers: { authorization: 'Bearer ' + p.get('token') } });
    out.textContent = 'read: HTTP ' + res.status + ' ' + (await res.text());
  } catch (err) {
    out.textContent = 'blocked: ' + err.name + ': ' + err.message;
  }
  out.dataset.done = 'true';
})();
`),
  );
  // In this process: port 0, and the port it bound (nothing else needs it before it listens).
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { origin: `https://127.0.0.1:${port}`, close: () => app.close() };
}

/** Console lines, CSP reports, uncaught errors and dialogs of one page. */
function watch(page: Page) {
  const seen = { console: [] as string[], csp: [] as string[], errors: [] as string[], dialogs: [] as string[] };
  page.on('console', (m) => {
    seen.console.push(m.text());
    if (/Content Security Policy/i.test(m.text())) seen.csp.push(m.text());
  });
  page.on('pageerror', (e) => seen.errors.push(String(e)));
  page.on('dialog', (d) => {
    seen.dialogs.push(d.message());
    void d.dismiss();
  });
  return seen;
}

function expectPng(file: string) {
  expect(statSync(file).size).toBeGreaterThan(1000);
  expect(readFileSync(file).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
}

describe('client API in Chromium: hub, foreign origin, viewer (real agent, real dev cloud)', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud;
  let agent: Supervised;
  let foreign: Awaited<ReturnType<typeof foreignSite>>;
  let browser: Browser;
  let fortOrigin: string;
  let clientCa: Buffer;
  const contexts: BrowserContext[] = [];
  const newPage = async () => {
    const ctx = await browser.newContext();
    contexts.push(ctx);
    const page = await ctx.newPage();
    return { page, seen: watch(page) };
  };

  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { fortId: FORT, cloudAuth: true });
    fortOrigin = `https://127.0.0.1:${inst.layout.ports.clientApi}`;
    clientCa = readFileSync(pki.clientZone.ca);
    const store = openStore({ path: join(inst.layout.dataDir, 'agent', 'agent.db'), log: pino({ level: 'silent' }) });
    const appsDir = join(inst.layout.dataDir, 'agent', 'apps');
    seedApp(store.db, appsDir, {
      id: 'sales-2026',
      name: 'Sales 2026',
      space: 'sales',
      tables: { orders: { columns: ['id', 'customer', 'amount'], rows: ORDERS } },
    });
    seedApp(store.db, appsDir, {
      id: 'hr-2026',
      name: 'HR 2026',
      space: 'hr',
      tables: { salaries: { columns: ['who', 'salary'], rows: [['x', 1]] } },
    });
    store.close();
    // The viewer's redirect login may send tokens back to this fort only.
    dev = await testDevCloud(pki, { ports: inst.layout.ports, policy: POLICY, fortOrigins: [fortOrigin] });
    agent = await startAgent(inst.files.agent);
    foreign = await foreignSite(pki);
    [browser] = await Promise.all([launchChromium(pki), agent.waitReady(20_000)]);
    // Only this file's shots: app-viewer.test.ts writes beside them, maybe at the same time.
    for (const f of ['hub.png', 'viewer.png']) rmSync(join(SHOTS, f), { force: true });
    mkdirSync(SHOTS, { recursive: true });
  });
  afterAll(async () => {
    for (const ctx of contexts) await ctx.close();
    await browser?.close();
    await foreign?.close();
    await agent?.stop();
    await dev?.stop();
    inst?.cleanup();
  });

  it("the dev cloud's hub page signs in and reads the fort's apps and rows cross-origin", async () => {
    // The hub is served by the dev cloud, which is the origin the agent's config allows.
    expect(new URL(dev.apiUrl).origin).toBe(`https://127.0.0.1:${inst.layout.ports.cloud}`);
    const { page, seen } = await newPage();
    await page.goto(`${dev.apiUrl}/hub?fort=${encodeURIComponent(fortOrigin)}`);
    expect(await page.inputValue('#fort')).toBe(fortOrigin);
    await page.fill('#user', 'alice');
    await page.fill('#tenant', 't1');
    await page.click('#login');
    await page.waitForSelector('[data-app-id="sales-2026"]');
    // The cloud's policy hides the hr app from alice.
    expect(await page.locator('#apps li').allTextContents()).toEqual(['Sales 2026 [sales]']);
    expect(await page.textContent('#status')).toMatch(/^Logged in as alice \(tenant t1\) until \d{4}-/);

    await page.click('[data-app-id="sales-2026"]');
    await page.waitForSelector('#rows[data-table="orders"]');
    expect(await page.locator('#tables li').allTextContents()).toEqual(['orders (60 rows)']);
    expect(await page.textContent('#rows caption')).toBe('orders: rows 1-50 of 60');
    await expectFirstOrdersPage(page);
    expect(await page.isVisible('#error')).toBe(false);

    const shot = join(SHOTS, 'hub.png');
    await page.screenshot({ path: shot, fullPage: true });
    expectPng(shot);
    expect(seen.csp).toEqual([]);
    expect(seen.errors).toEqual([]);
    expect(seen.dialogs).toEqual([]);
  });

  it('a page on an origin the fort does not allow cannot read it, even with a valid token', async () => {
    const token = await dev.login('alice', 't1');
    // The token itself is good: outside a browser it reads the apps.
    const direct = await httpsCall(fortOrigin, clientCa, 'GET', '/api/v1/apps', {
      headers: { authorization: `Bearer ${token}`, origin: foreign.origin },
    });
    expect(direct.status).toBe(200);
    expect((direct.json() as { apps: { id: string }[] }).apps.map((a) => a.id)).toEqual(['sales-2026']);
    // ...but the fort never grants that origin CORS access, in a preflight or in an answer.
    expect(direct.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = (origin: string) =>
      httpsCall(fortOrigin, clientCa, 'OPTIONS', '/api/v1/apps', {
        headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
      });
    expect((await preflight(dev.apiUrl)).headers['access-control-allow-origin']).toBe(dev.apiUrl);
    const refused = await preflight(foreign.origin);
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
    expect(refused.headers['access-control-allow-credentials']).toBeUndefined();

    const { page, seen } = await newPage();
    const failed: string[] = [];
    page.on('requestfailed', (r) => {
      if (r.url().startsWith(fortOrigin)) failed.push(`${r.method()} ${r.url()} ${r.failure()?.errorText}`);
    });
    await page.goto(`${foreign.origin}/#${new URLSearchParams({ fort: fortOrigin, token }).toString()}`);
    await page.waitForSelector('#result[data-done="true"]');
    expect(await page.textContent('#result')).toBe('blocked: TypeError: Failed to fetch');
    expect(failed).toEqual([`GET ${fortOrigin}/api/v1/apps net::ERR_FAILED`]);
    // Chromium says why: CORS, not the page's CSP.
    expect(
      seen.console.some((l) => l.includes(`from origin '${foreign.origin}' has been blocked by CORS policy`)),
    ).toBe(true);
    expect(seen.csp).toEqual([]);
  });

  it("the fort's viewer signs in through the cloud's login redirect and shows apps and rows", async () => {
    const { page, seen } = await newPage();
    await page.goto(`${fortOrigin}/`);
    await page.waitForSelector('#login:visible');
    await page.fill('#user', 'alice');
    const redirect = page.waitForResponse((r) => r.url().startsWith(`${dev.apiUrl}/dev/v1/login?`));
    await page.click('#login button');
    const login = await redirect;
    expect(login.status()).toBe(302);
    const loginUrl = new URL(login.url());
    expect(Object.fromEntries(loginUrl.searchParams)).toEqual({
      user: 'alice',
      tenant: 't1',
      fort: FORT,
      redirect_uri: `${fortOrigin}/`,
    });
    expect((await login.allHeaders())['location']).toMatch(
      new RegExp(`^${fortOrigin.replace(/\./g, '\\.')}/#token=[\\w-]+\\.[\\w-]+\\.[\\w-]+$`),
    );

    await page.waitForSelector('[data-app-id="sales-2026"]');
    // Back on the fort, the token has left the address bar.
    expect(page.url()).toBe(`${fortOrigin}/`);
    expect(await page.textContent('#who')).toBe('1 app(s)');
    expect(await page.locator('#apps li').allTextContents()).toEqual(['Sales 2026']);
    expect(await page.isVisible('#login')).toBe(false);

    await page.click('[data-app-id="sales-2026"]');
    await page.click('#tables [data-table="orders"]');
    await page.waitForSelector('#rows tbody tr');
    expect(await page.locator('#tables li').allTextContents()).toEqual(['orders (60)']);
    await expectFirstOrdersPage(page);
    const rows = page.locator('#rows tbody tr');
    expect(await page.textContent('#error')).toBe('');
    expect(await page.textContent('#caption')).toBe('orders: rows 1-50 of 60');
    expect(await page.isVisible('#prev')).toBe(false);

    const shot = join(SHOTS, 'viewer.png');
    await page.screenshot({ path: shot, fullPage: true });
    expectPng(shot);

    // The rest of the table is one page further; and back.
    await page.click('#next');
    await page.waitForSelector('#caption:text("orders: rows 51-60 of 60")');
    expect(await rows.count()).toBe(10);
    expect(await rows.nth(0).locator('td').first().textContent()).toBe('51');
    expect(await page.isVisible('#next')).toBe(false);
    await page.click('#prev');
    await page.waitForSelector('#caption:text("orders: rows 1-50 of 60")');

    // A token the fort refuses is forgotten, and the sign-in form comes back.
    await page.evaluate("sessionStorage.setItem('fort-token', 'not.a.token')");
    await page.reload();
    await page.waitForSelector('#login:visible');
    expect(await page.textContent('#error')).toMatch(/^HTTP 401 FORT_ERR_UNAUTHENTICATED/);
    expect(await page.evaluate("sessionStorage.getItem('fort-token')")).toBeNull();
    expect(seen.csp).toEqual([]);
    expect(seen.errors).toEqual([]);
    expect(seen.dialogs).toEqual([]);
  });
});
