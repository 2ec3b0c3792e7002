import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { PolicyInput } from '../../../dev-cloud/cloud-api/policy.js';
import { eventually, REPO, testPki } from '../../helpers/fort.js';
import { startEngineStack, type EngineStack } from '../../helpers/engine-stack.js';
import { httpsCall } from '../../helpers/https.js';
import { launchChromium } from '../../helpers/browser.js';
import { DEMO_APP_ID, demoAppToml, demoOrdersCsv, writeDemoSources } from '../../../scripts/demo-app.js';

/**
 * The App Viewer in a real Chromium against the real agent, fort-engine and dev cloud, on an app
 * loaded from a generated CSV: list boxes, KPIs, the bar chart and the rows are checked against
 * the client API's own answers under the same selections (and the counts against the generated
 * data), through selecting, clearing, searching, chips, a reload of the URL, sorting, paging
 * and the keyboard; at desktop and phone widths, under the strict CSP.
 */

const FORT = 'fort-dev-1';
const APP = 'shop';
const POLICY: PolicyInput = {
  decision_ttl_seconds: 600,
  tenants: {
    t1: {
      forts: [FORT],
      users: { alice: { groups: ['analysts'] } },
      spaces: { sales: { analysts: ['app.list', 'app.read', 'app.reload'] } },
      apps: { [APP]: { space: 'sales' }, [DEMO_APP_ID]: { space: 'sales' } },
    },
  },
};
const XSS = '<img src=x onerror=alert(1)>';
const REGIONS = ['North', 'South', 'East', 'West', 'Central'];
/** North sells only Apples and Pears: selecting it excludes the other two products. */
const PRODUCTS = ['Apples', 'Pears', 'Plums', XSS];
const N = 2400;
const SHOTS = join(REPO, 'test-results', 'browser');
const GRID_PAGE = 20;

interface Order {
  id: number;
  day: string;
  region: string;
  product: string;
  customer: string;
  code: string;
  amount: number | null;
  paid: boolean;
}
const ORDERS: Order[] = Array.from({ length: N }, (_, i) => {
  const region = REGIONS[i % REGIONS.length]!;
  return {
    id: i + 1,
    day: new Date(Date.UTC(2026, 0, 1) + (i % 365) * 86_400_000).toISOString().slice(0, 10),
    region,
    product: PRODUCTS[Math.floor(i / 5) % (region === 'North' ? 2 : PRODUCTS.length)]!,
    customer: `cust-${String(i % 30).padStart(2, '0')}`,
    // 2400 distinct codes: too many for a list box.
    code: `K${String(i * 7919).padStart(8, '0')}`,
    amount: i % 11 === 0 ? null : ((i * 37) % 5000) / 100,
    paid: i % 3 !== 0,
  };
});
const csvCell = (v: string) => (/[",]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
const CSV =
  ['id,day,region,product,customer,code,amount,paid']
    .concat(
      ORDERS.map((o) =>
        [o.id, o.day, o.region, csvCell(o.product), o.customer, o.code, o.amount ?? '', o.paid].join(','),
      ),
    )
    .join('\n') + '\n';
const APP_TOML = `id = "${APP}"
name = "Shop orders"
space = "sales"
[[tables]]
name = "orders"
connector = "csv"
path = "shop.csv"
columns = [ { name = "id", type = "integer" }, { name = "day", type = "date" }, { name = "region", type = "string" }, { name = "product", type = "string" }, { name = "customer", type = "string" }, { name = "code", type = "string" }, { name = "amount", type = "number" }, { name = "paid", type = "boolean" } ]
`;

/** The one page global a waitForFunction here reads (the tests compile without the DOM library). */
declare const document: { querySelector(selector: string): { getAttribute(name: string): string | null } | null };

type Cell = string | number | boolean | null;
type Selections = { field: string; values: Cell[] }[];
/** What the client API answers, as far as this test reads it. */
interface Answer {
  version: string;
  rows: Cell[][];
  total: number;
  next?: string;
  values: { value: Cell; count: number; state: string; selected: boolean }[];
}
const cellText = (v: Cell | undefined) => (v === null || v === undefined ? '' : String(v));

function expectPng(file: string) {
  expect(statSync(file).size).toBeGreaterThan(1000);
  expect(readFileSync(file).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
}

describe('App Viewer in Chromium (real agent, fort-engine and dev cloud)', () => {
  let stack: EngineStack;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let fortOrigin: string;
  let ca: Buffer;
  let alice: string;
  const seen = { csp: [] as string[], errors: [] as string[], dialogs: [] as string[], failed: [] as string[] };

  const call = async (method: string, path: string, json?: unknown) => {
    const res = await httpsCall(fortOrigin, ca, method, path, {
      headers: { authorization: `Bearer ${alice}` },
      ...(json === undefined ? {} : { json }),
    });
    expect(res.status, res.body).toBe(200);
    return res.json() as Answer;
  };
  const values = (field: string, sel: Selections, search?: string) =>
    call(
      'GET',
      `/api/v1/apps/${APP}/fields/${field}/values?${new URLSearchParams({
        table: 'orders',
        selections: JSON.stringify(sel),
        limit: '100',
        ...(search ? { search } : {}),
      }).toString()}`,
    );
  const rowsPage = (sel: Selections, sort?: string, after?: string) =>
    call(
      'GET',
      `/api/v1/apps/${APP}/tables/orders/rows?${new URLSearchParams({
        limit: String(GRID_PAGE),
        selections: JSON.stringify(sel),
        ...(sort ? { sort } : {}),
        ...(after ? { after } : {}),
      }).toString()}`,
    );

  /** Every answer the viewer asked for has come (aria-busy), with no error shown. */
  const settled = async () => {
    await page.waitForSelector('body[data-view="engine"] #viewer[aria-busy="false"]');
    expect(await page.textContent('#error')).toBe('');
  };
  const box = (field: string) => page.locator(`.listbox[data-field="${field}"]`);
  /** A value's button by its text (no value here has a quote). */
  const boxValue = (field: string, text: string) => box(field).locator(`button.value[data-value="${text}"]`);
  const boxOnScreen = (field: string) =>
    box(field)
      .locator('button.value')
      .evaluateAll((bs) =>
        bs.map((b) => [
          b.querySelector('.v')!.textContent,
          b.getAttribute('data-state'),
          Number(b.getAttribute('data-count')),
          b.getAttribute('aria-pressed') === 'true',
        ]),
      );
  const boxFromApi = async (field: string, sel: Selections, search?: string) =>
    (
      (await values(field, sel, search)).values as { value: Cell; count: number; state: string; selected: boolean }[]
    ).map((v) => [v.value === null ? '(empty)' : String(v.value), v.state, v.count, v.selected]);
  const gridOnScreen = () =>
    page.locator('#grid tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));

  /** Every widget on screen equals the client API's answers under `sel`. */
  async function expectScreen(sel: Selections, sort?: string) {
    const kpi = await call('POST', `/api/v1/apps/${APP}/query`, {
      selections: sel,
      measures: [{ op: 'count' }, { op: 'sum', field: 'amount' }, { op: 'avg', field: 'amount' }],
    });
    const kpis = await page
      .locator('#kpis .kpi')
      .evaluateAll((ks) =>
        ks.map((k) => [k.getAttribute('data-kpi'), k.querySelector('dd')!.getAttribute('data-value')]),
      );
    expect(kpis).toEqual([
      ['count', cellText(kpi.rows[0]![0])],
      ['sum_amount', cellText(kpi.rows[0]![1])],
      ['avg_amount', cellText(kpi.rows[0]![2])],
    ]);

    const chart = await call('POST', `/api/v1/apps/${APP}/query`, {
      selections: sel,
      dimensions: ['region'],
      measures: [{ op: 'sum', field: 'amount' }],
      sort: [{ by: 'sum_amount', dir: 'desc' }],
      limit: 20,
    });
    const bars = await page
      .locator('#chart svg g.bar')
      .evaluateAll((gs) =>
        gs.map((g) => [
          g.getAttribute('data-label'),
          g.getAttribute('data-value'),
          g.querySelector('title')!.textContent,
        ]),
      );
    expect(bars.map((b) => b.slice(0, 2))).toEqual(chart.rows.map((r) => [String(r[0]), cellText(r[1])]));
    for (const b of bars) expect(b[2]).toMatch(new RegExp(`^region ${b[0]}: [\\d,.]+$`));

    for (const field of ['region', 'product', 'customer', 'paid'])
      expect(await boxOnScreen(field), field).toEqual(await boxFromApi(field, sel));

    const rows = await rowsPage(sel, sort);
    expect(await gridOnScreen()).toEqual(rows.rows.map((r) => r.map(cellText)));
    expect(await page.textContent('#grid-caption')).toBe(
      rows.total
        ? `orders: rows 1–${Math.min(GRID_PAGE, rows.total)} of ${rows.total.toLocaleString('en-US')}`
        : 'orders: no rows under the current selections',
    );
    // The chips say the same as the selections.
    expect(await page.locator('#chips .chip').evaluateAll((cs) => cs.map((c) => c.getAttribute('data-field')))).toEqual(
      sel.map((s) => s.field),
    );
    return { kpi: kpi.rows[0]!, total: rows.total };
  }
  /** The selections the address bar carries. */
  const urlSelections = () => {
    const u = new URL(page.url());
    expect(u.hash).toBe('');
    expect(u.search).not.toMatch(/token/i);
    const sel = u.searchParams.get('sel');
    return sel ? (JSON.parse(sel) as Record<string, Cell[]>) : {};
  };

  beforeAll(async () => {
    const pki = await testPki();
    [stack, browser] = await Promise.all([
      startEngineStack(pki, {
        fortId: FORT,
        policy: POLICY,
        // The viewer's redirect login may send tokens back to this fort only.
        fortOrigins: (inst) => [`https://127.0.0.1:${inst.layout.ports.clientApi}`],
        prepare: (inst) => {
          writeFileSync(join(inst.layout.sourcesDir!, 'shop.csv'), CSV);
          // The demo app of `npm start` too, as the dev stack writes it.
          writeDemoSources(inst.layout.sourcesDir!);
        },
      }),
      launchChromium(pki),
    ]);
    fortOrigin = stack.clientApi;
    ca = readFileSync(pki.clientZone.ca);
    await Promise.all([stack.loadApp(APP_TOML, APP, 30_000), stack.loadApp(demoAppToml(), DEMO_APP_ID, 30_000)]);
    alice = await stack.dev.login('alice', 't1');
    for (const f of ['app-viewer.png', 'app-viewer-phone.png', 'app-viewer-demo.png'])
      rmSync(join(SHOTS, f), { force: true });
    mkdirSync(SHOTS, { recursive: true });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) seen.csp.push(m.text());
    });
    page.on('pageerror', (e) => seen.errors.push(String(e)));
    page.on('requestfailed', (r) => seen.failed.push(`${r.method()} ${r.url()} ${r.failure()?.errorText}`));
    page.on('dialog', (d) => {
      seen.dialogs.push(d.message());
      void d.dismiss();
    });
  }, 60_000);
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await stack?.stop();
  });

  it('signs in through the cloud and opens the shared address with defaults from the schema', async () => {
    await page.goto(`${fortOrigin}/?app=${APP}`);
    await page.waitForSelector('#login:visible');
    await page.fill('#user', 'alice');
    await page.click('#login button');
    await settled();
    // The token came in the fragment and left at once; the app of the address came back.
    expect(page.url()).toBe(`${fortOrigin}/?app=${APP}&table=orders`);
    expect(await page.evaluate("sessionStorage.getItem('fort-token')")).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(await page.textContent('#app-title')).toBe('Shop orders');
    expect(await page.getAttribute(`[data-app-id="${APP}"]`, 'aria-current')).toBe('page');

    // List boxes for the text and boolean fields of few values (code has 2400: none); the chart
    // by the first of them; KPIs of the first number field; every field in the rows.
    expect(await page.locator('.listbox').evaluateAll((s) => s.map((x) => x.getAttribute('data-field')))).toEqual([
      'region',
      'product',
      'customer',
      'paid',
    ]);
    expect(await page.textContent('#chart-title')).toBe('Sum of amount by region');
    expect(await page.locator('#kpis dt').allTextContents()).toEqual(['Rows', 'Sum of amount', 'Average amount']);
    expect(await page.locator('#grid th').allTextContents()).toEqual([
      'id',
      'day',
      'region',
      'product',
      'customer',
      'code',
      'amount',
      'paid',
    ]);
    const all = await expectScreen([]);
    expect(all.kpi[0]).toBe(N);
    expect(await page.textContent('#kpis [data-kpi="count"] dd')).toBe('2,400');
    expect(await page.locator('#chart svg g.bar').count()).toBe(REGIONS.length);
    expect(await page.getAttribute('#chart svg', 'role')).toBe('img');
    // Fort data is text: the product named like markup is shown as it is, and nothing ran.
    expect(await boxValue('product', XSS).count()).toBe(1);
    expect(await page.locator('#viewer img').count()).toBe(0);
  });

  it('a click selects a value: KPIs, bars, rows and the other list boxes follow; a second click clears it', async () => {
    const before = await expectScreen([]);
    await boxValue('region', 'North').click();
    await settled();
    const north = [{ field: 'region', values: ['North'] }];
    const after = await expectScreen(north);
    // Independently of the engine: the generated rows.
    const northRows = ORDERS.filter((o) => o.region === 'North');
    expect(after.kpi[0]).toBe(northRows.length);
    expect(after.kpi[1]).toBeCloseTo(
      northRows.reduce((s, o) => s + (o.amount ?? 0), 0),
      6,
    );
    expect(await boxValue('region', 'North').getAttribute('aria-pressed')).toBe('true');
    // North buys only apples and pears: the other products are excluded (count 0), still listed.
    for (const p of ['Plums', XSS]) {
      expect(await boxValue('product', p).getAttribute('data-state')).toBe('excluded');
      expect(await boxValue('product', p).getAttribute('data-count')).toBe('0');
    }
    expect(await boxValue('product', 'Apples').getAttribute('data-state')).toBe('possible');
    // The region's own selection excludes none of its values.
    expect(await box('region').locator('button[data-state="excluded"]').count()).toBe(0);
    expect(
      await page.locator('#chart svg g.bar').evaluateAll((g) => g.map((x) => x.getAttribute('data-label'))),
    ).toEqual(['North']);
    expect(urlSelections()).toEqual({ region: ['North'] });
    expect(await page.locator('#chips .chip').allTextContents()).toEqual(['region: North×']);

    await boxValue('region', 'North').click();
    await settled();
    const cleared = await expectScreen([]);
    expect(cleared).toEqual(before);
    expect(urlSelections()).toEqual({});
    expect(await page.isVisible('#no-selections')).toBe(true);
  });

  it('a search within a list box lists only the matching values, under the selections', async () => {
    await boxValue('product', 'Pears').click();
    await settled();
    const sel = [{ field: 'product', values: ['Pears'] }];
    await box('customer').locator('input[type="search"]').fill('T-1');
    await settled();
    const found = await boxOnScreen('customer');
    // Case-insensitive; the possible ones first (some customers never bought pears).
    expect(found.map((v) => v[0]).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `cust-1${i}`));
    expect(found.some((v) => v[1] === 'excluded')).toBe(true);
    expect(found).toEqual(await boxFromApi('customer', sel, 'T-1'));
    await box('customer').locator('input[type="search"]').fill('nothing like it');
    await settled();
    expect(await box('customer').locator('button.value').count()).toBe(0);
    expect(await box('customer').locator('.note').textContent()).toBe('No value matches.');
    await box('customer').locator('input[type="search"]').fill('');
    await settled();
    expect(await boxOnScreen('customer')).toEqual(await boxFromApi('customer', sel));
  });

  it('selections are chips that remove them, and the address keeps them across a reload', async () => {
    // From the previous test: product Pears. Add two regions.
    await boxValue('region', 'East').click();
    await settled();
    await boxValue('region', 'West').click();
    await settled();
    const both: Selections = [
      { field: 'product', values: ['Pears'] },
      { field: 'region', values: ['East', 'West'] },
    ];
    await expectScreen(both);
    expect(urlSelections()).toEqual({ product: ['Pears'], region: ['East', 'West'] });
    const expected = ORDERS.filter((o) => o.product === 'Pears' && ['East', 'West'].includes(o.region)).length;
    expect(await page.getAttribute('#kpis [data-kpi="count"] dd', 'data-value')).toBe(String(expected));

    // A reload of the address (as a shared link would open): the same selections, the same numbers.
    const address = page.url();
    await page.reload();
    await settled();
    expect(page.url()).toBe(address);
    await expectScreen(both);
    expect(await page.locator('#chips .chip').allTextContents()).toEqual(['product: Pears×', 'region: East, West×']);

    // Back undoes the last selection (each one is a history entry).
    await page.goBack();
    await settled();
    await expectScreen([
      { field: 'product', values: ['Pears'] },
      { field: 'region', values: ['East'] },
    ]);
    await page.goForward();
    await settled();
    await expectScreen(both);

    await page.click('#chips .chip[data-field="product"] button');
    await settled();
    await expectScreen([{ field: 'region', values: ['East', 'West'] }]);
    expect(urlSelections()).toEqual({ region: ['East', 'West'] });
    // The focus stays in the selections bar (on the next chip's button).
    expect(await page.evaluate("document.activeElement.getAttribute('aria-label')")).toBe(
      'Remove selection region: East, West',
    );
    await page.click('#clear-all');
    await settled();
    await expectScreen([]);
  });

  it('the rows sort by a column and page by keyset, forward and back', async () => {
    await boxValue('region', 'South').click();
    await settled();
    const sel = [{ field: 'region', values: ['South'] }];
    const amountHeader = page.locator('#grid th[data-field="amount"]');
    await amountHeader.locator('button').click();
    await settled();
    expect(await amountHeader.getAttribute('aria-sort')).toBe('ascending');
    await amountHeader.locator('button').click();
    await settled();
    expect(await amountHeader.getAttribute('aria-sort')).toBe('descending');
    expect(new URL(page.url()).searchParams.get('sort')).toBe('amount:desc');
    const first = await rowsPage(sel, 'amount:desc');
    expect(await gridOnScreen()).toEqual(first.rows.map((r) => r.map(cellText)));
    expect(first.total).toBe(N / REGIONS.length);
    expect(await page.isDisabled('#grid-prev')).toBe(true);

    await page.click('#grid-next');
    await settled();
    const second = await rowsPage(sel, 'amount:desc', first.next);
    expect(await gridOnScreen()).toEqual(second.rows.map((r) => r.map(cellText)));
    expect(await page.textContent('#grid-caption')).toBe('orders: rows 21–40 of 480');
    await page.click('#grid-next');
    await settled();
    const third = await rowsPage(sel, 'amount:desc', second.next);
    expect(await gridOnScreen()).toEqual(third.rows.map((r) => r.map(cellText)));
    await page.click('#grid-prev');
    await settled();
    expect(await gridOnScreen()).toEqual(second.rows.map((r) => r.map(cellText)));
    await page.click('#grid-prev');
    await settled();
    expect(await gridOnScreen()).toEqual(first.rows.map((r) => r.map(cellText)));
    expect(await page.textContent('#grid-caption')).toBe('orders: rows 1–20 of 480');
    expect(await page.isDisabled('#grid-prev')).toBe(true);

    // The app is reloaded meanwhile (the dev stack does so every 30 s): the cursor the viewer holds
    // is of the old version, so Next starts again from the first page of the new one, with no error.
    await page.click('#grid-next');
    await settled();
    const old = (await call('GET', `/api/v1/apps/${APP}/schema`)).version;
    await stack.admin.startReload(APP);
    await eventually(
      async () => {
        const now = (await call('GET', `/api/v1/apps/${APP}/schema`)).version;
        return now !== old ? now : undefined;
      },
      30_000,
      'a new version of the app',
    );
    await page.click('#grid-next');
    await settled();
    expect(await page.textContent('#grid-caption')).toBe('orders: rows 1–20 of 480');
    expect(await gridOnScreen()).toEqual((await rowsPage(sel, 'amount:desc')).rows.map((r) => r.map(cellText)));

    // A third click goes back to the storage order.
    await amountHeader.locator('button').click();
    await settled();
    expect(await amountHeader.getAttribute('aria-sort')).toBeNull();
    expect(new URL(page.url()).searchParams.get('sort')).toBeNull();
    await expectScreen(sel);

    // The amounts go down the page, nulls last (the engine's order).
    const amounts = first.rows.map((r) => r[6]);
    expect(amounts).toEqual([...amounts].sort((a, b) => Number(b) - Number(a)));
    await page.click('#chips .chip button');
    await settled();
  });

  it('is usable by keyboard: Tab reaches a value, Enter and Space toggle it, the focus stays', async () => {
    await page.focus('.listbox[data-field="paid"] input[type="search"]');
    await page.keyboard.press('Tab');
    const focused = () =>
      page.evaluate<[string, string]>(
        "[document.activeElement.closest('.listbox')?.getAttribute('data-field'), document.activeElement.getAttribute('data-value')]",
      );
    const [field, value] = await focused();
    expect(field).toBe('paid');
    expect(['true', 'false']).toContain(value);
    await page.keyboard.press('Enter');
    await settled();
    const sel = [{ field: 'paid', values: [value === 'true'] }];
    await expectScreen(sel);
    expect(await focused()).toEqual(['paid', value]);
    expect(await page.evaluate("document.activeElement.getAttribute('aria-pressed')")).toBe('true');
    expect(await page.getAttribute('#kpis [data-kpi="count"] dd', 'data-value')).toBe(
      String(ORDERS.filter((o) => String(o.paid) === value).length),
    );
    await page.keyboard.press('Space');
    await settled();
    await expectScreen([]);
    expect(await page.evaluate("document.activeElement.getAttribute('aria-pressed')")).toBe('false');
    // Focus is drawn (:focus-visible), and the buttons and regions are named for screen readers.
    expect(await page.evaluate('getComputedStyle(document.activeElement).outlineStyle')).toBe('solid');
    expect(await page.getAttribute('#error', 'role')).toBe('alert');
    expect(await page.getAttribute('#status', 'aria-live')).toBe('polite');
    expect(await page.textContent('#status')).toBe('2,400 rows');
    expect(await boxValue('region', 'North').getAttribute('aria-label')).toBe('North, 480 rows');
  });

  it("shows npm start's demo app with meaningful defaults: regions, products, customers, amounts; its two tables", async () => {
    await page.click(`[data-app-id="${DEMO_APP_ID}"]`);
    await settled();
    // The table with the most rows first.
    expect(page.url()).toBe(`${fortOrigin}/?app=${DEMO_APP_ID}&table=orders`);
    expect(await page.textContent('#app-title')).toBe('Demo sales');
    expect((await page.locator('#table-tabs button').allTextContents()).sort()).toEqual([
      'customers (40 rows)',
      'orders (3,000 rows)',
    ]);
    expect(await page.locator('.listbox').evaluateAll((s) => s.map((x) => x.getAttribute('data-field')))).toEqual([
      'region',
      'product',
      'customer',
      'paid',
    ]);
    expect(await page.textContent('#chart-title')).toBe('Sum of amount by region');
    const orders = demoOrdersCsv(3000)
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => {
        const cells = line.split(',');
        return { region: cells[2]!, amount: Number(cells.at(-2)) };
      });
    const byRegion = new Map<string, number>();
    for (const o of orders) byRegion.set(o.region, (byRegion.get(o.region) ?? 0) + o.amount);
    const bars = await page
      .locator('#chart svg g.bar')
      .evaluateAll((gs) => gs.map((g) => [g.getAttribute('data-label'), Number(g.getAttribute('data-value'))]));
    expect(bars.map((b) => b[0]).sort()).toEqual([...byRegion.keys()].sort());
    for (const [region, sum] of bars) expect(sum).toBeCloseTo(byRegion.get(region as string)!, 4);
    expect(await page.getAttribute('#kpis [data-kpi="count"] dd', 'data-value')).toBe('3000');
    const shot = join(SHOTS, 'app-viewer-demo.png');
    await page.screenshot({ path: shot, fullPage: true });
    expectPng(shot);

    // Asia Pacific never buys sprockets: selecting it excludes them.
    await boxValue('region', 'Asia Pacific').click();
    await settled();
    expect(await boxValue('product', 'Sprocket').getAttribute('data-state')).toBe('excluded');
    expect(await page.getAttribute('#kpis [data-kpi="count"] dd', 'data-value')).toBe(
      String(orders.filter((o) => o.region === 'Asia Pacific').length),
    );

    // The SQLite customers: a table of its own (selections are per table).
    await page.click('#table-tabs button[data-table="customers"]');
    await settled();
    expect(new URL(page.url()).searchParams.get('table')).toBe('customers');
    expect(await page.locator('#chips .chip').count()).toBe(0);
    expect(await page.locator('.listbox').evaluateAll((s) => s.map((x) => x.getAttribute('data-field')))).toEqual([
      'region',
      'country',
      'name',
    ]);
    expect(await page.textContent('#chart-title')).toBe('Rows by region');
    expect(await page.locator('#kpis dt').allTextContents()).toEqual(['Rows']);
    expect(await page.getAttribute('#kpis [data-kpi="count"] dd', 'data-value')).toBe('40');
    await page.click(`[data-app-id="${APP}"]`);
    await settled();
  });

  it('reads at 1280×800 and collapses to one column at phone width; no CSP violation, no error', async () => {
    await boxValue('region', 'North').click();
    await settled();
    const wide = join(SHOTS, 'app-viewer.png');
    await page.screenshot({ path: wide, fullPage: true });
    expectPng(wide);
    const columns = () =>
      page.evaluate("getComputedStyle(document.querySelector('.layout')).gridTemplateColumns.split(' ').length");
    expect(await columns()).toBe(2);

    await page.setViewportSize({ width: 390, height: 844 });
    // A function, not a string: the page's CSP refuses eval, Playwright's included.
    await page.waitForFunction(() => Number(document.querySelector('#chart svg')?.getAttribute('width')) <= 390);
    expect(await columns()).toBe(1);
    // Nothing wider than the phone but the rows table, which scrolls in its own box.
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    const phone = join(SHOTS, 'app-viewer-phone.png');
    await page.screenshot({ path: phone, fullPage: true });
    expectPng(phone);

    expect(seen.csp).toEqual([]);
    expect(seen.errors).toEqual([]);
    expect(seen.dialogs).toEqual([]);
    expect(seen.failed).toEqual([]);
  });
});
