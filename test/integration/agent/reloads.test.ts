import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import type { PolicyInput } from '../../../dev-cloud/cloud-api/policy.js';
import { DIST, eventually, startAgent, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import { httpsCall } from '../../helpers/https.js';
import { createAdminClient } from '../../../lib/admin-client.js';
import { loadTlsMaterial } from '../../../lib/tls.js';

const run = promisify(execFile);
const FORT = 'fort-dev-1';
const POLICY: PolicyInput = {
  decision_ttl_seconds: 600,
  tenants: {
    t1: {
      forts: [FORT],
      users: { alice: { groups: ['g'] } },
      spaces: { sales: { g: ['app.list', 'app.read', 'app.reload'] } },
      apps: { orders: { space: 'sales' }, sched: { space: 'sales' }, big: { space: 'sales' } },
    },
  },
};

/** `n` orders; `tag` is in every row, so a page shows which version it came from. */
function ordersCsv(n: number, tag: string): string {
  const lines = ['id,tag,amount,paid,day'];
  for (let i = 1; i <= n; i++)
    lines.push(
      `${i},${tag},${(i * 1.5).toFixed(1)},${i % 2 ? 'true' : 'false'},2026-01-${String((i % 28) + 1).padStart(2, '0')}`,
    );
  return `${lines.join('\n')}\n`;
}

const ordersToml = (id: string, file: string) => `id = "${id}"
name = "${id}"
space = "sales"
[[tables]]
name = "orders"
connector = "csv"
path = "${file}"
columns = [ { name = "id", type = "integer" }, { name = "tag", type = "string" }, { name = "amount", type = "number" }, { name = "paid", type = "boolean" }, { name = "day", type = "date" } ]
`;

/**
 * Reloads with the real agent and the real dev cloud: the bridge carries the cloud's
 * reload.requested events (SigV4 MQTT), the agent loads real CSV/SQLite files into version
 * files, browsers read them through the client API, status goes back to the dev cloud.
 */
describe('reloads end to end', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud;
  let agent: Supervised;
  let sources: string;
  let base: string;
  let ca: Buffer;
  let token: string;

  const fortctl = (...args: string[]) =>
    run(process.execPath, [join(DIST, 'fortctl/main.js'), '--config', inst.files.fortctl, ...args]);
  const addApp = async (name: string, text: string) => {
    const file = join(inst.dir, name);
    writeFileSync(file, text);
    return fortctl('apps', 'add', file);
  };
  const rows = async (app: string, query = 'limit=1000') => {
    const res = await httpsCall(base, ca, 'GET', `/api/v1/apps/${app}/tables/orders/rows?${query}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return { status: res.status, body: res.json() as { columns: string[]; rows: unknown[][]; total: number } };
  };
  const reloads = (app: string) => {
    const db = new Database(join(inst.dir, 'data/agent/agent.db'), { readonly: true });
    try {
      return db
        .prepare(
          'SELECT id, state, requests, attempts, error_code AS errorCode, error_message AS errorMessage, version_id AS versionId FROM reloads WHERE app_id = ? ORDER BY requested_at',
        )
        .all(app) as {
        id: string;
        state: string;
        requests: number;
        attempts: number;
        errorCode: string | null;
        errorMessage: string | null;
        versionId: number | null;
      }[];
    } finally {
      db.close();
    }
  };
  const settled = (app: string, count: number) =>
    eventually(
      () => {
        const r = reloads(app);
        return r.length >= count && r.every((x) => !['queued', 'running'].includes(x.state)) ? r : undefined;
      },
      30_000,
      `${count} reload(s) of ${app} to finish`,
    );
  const event = (type: string, data: Record<string, unknown>) => ({
    v: 1,
    id: randomUUID(),
    type,
    fortId: FORT,
    ts: new Date().toISOString(),
    data,
  });
  const publish = (e: object) => dev.bridge.publish(`forts/${FORT}/events`, JSON.stringify(e));

  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { fortId: FORT, iot: true, cloudAuth: true });
    sources = inst.layout.sourcesDir!;
    writeFileSync(join(sources, 'orders.csv'), ordersCsv(120, 'v1'));
    dev = await testDevCloud(pki, {
      ports: inst.layout.ports,
      policy: POLICY,
      schedules: [{ id: 'sched-every-second', fort: FORT, app: 'sched', cron: '* * * * * *' }],
    });
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);
    base = `https://127.0.0.1:${inst.layout.ports.clientApi}`;
    ca = readFileSync(pki.clientZone.ca);
    token = await dev.login('alice', 't1', 3600);
  });
  afterAll(async () => {
    await agent?.stop();
    await dev?.stop();
    inst?.cleanup();
  });

  it('a dev-cloud schedule fires → event over the bridge → reload → new version → rows for the user → reload.succeeded at the cloud', async () => {
    writeFileSync(join(sources, 'sched.csv'), ordersCsv(37, 'scheduled'));
    const added = await addApp('sched.toml', ordersToml('sched', 'sched.csv'));
    expect(added.stdout).toBe('registered app sched (sched, space sales)\n');
    const succeeded = await dev.reloadStatus.waitFor(
      (r) => r.appId === 'sched' && r.type === 'reload.succeeded',
      20_000,
    );
    expect(succeeded.data).toMatchObject({
      appId: 'sched',
      rows: 37,
      tables: [{ name: 'orders', rows: 37 }],
      versionId: expect.any(Number),
    });
    const started = dev.reloadStatus
      .list({ appId: 'sched' })
      .find((r) => r.type === 'reload.started' && r.reloadId === succeeded.reloadId);
    expect(started?.data).toMatchObject({ source: expect.stringMatching(/^event:/) });
    const page = await rows('sched', 'offset=35&limit=10');
    expect(page.status).toBe(200);
    expect(page.body).toMatchObject({ columns: ['id', 'tag', 'amount', 'paid', 'day'], total: 37 });
    expect(page.body.rows).toEqual([
      [36, 'scheduled', 54, 0, '2026-01-09'],
      [37, 'scheduled', 55.5, 1, '2026-01-10'],
    ]);
    // Status carries counts and ids, never a value.
    expect(JSON.stringify(dev.reloadStatus.list({ appId: 'sched' }))).not.toContain('scheduled');
  });

  it('refuses bad definitions at registration with the field and why; nothing is stored', async () => {
    mkdirSync(join(inst.dir, 'outside'), { recursive: true });
    writeFileSync(join(inst.dir, 'outside', 'secret.csv'), 'id\n1\n');
    symlinkSync(join(inst.dir, 'outside', 'secret.csv'), join(sources, 'link.csv'));
    const sqlite = join(sources, 'crm.sqlite');
    const db = new Database(sqlite);
    db.exec("CREATE TABLE customers (id INTEGER, name TEXT); INSERT INTO customers VALUES (1, 'a')");
    db.close();
    const sqlApp = (query: string) =>
      `id = "bad"\nname = "bad"\nspace = "sales"\n[[tables]]\nname = "c"\nconnector = "sqlite"\ndatabase = "crm.sqlite"\nquery = "${query}"\n`;
    const cases: [string, string, string][] = [
      [
        'unknown connector',
        ordersToml('bad', 'orders.csv').replace('connector = "csv"', 'connector = "ftp"'),
        'tables[0].connector: expected one of csv, sqlite, http',
      ],
      [
        '.. escape',
        ordersToml('bad', '../outside/secret.csv'),
        'tables[0].path: escapes reloads.data_dirs (through "..")',
      ],
      [
        'symlink escape',
        ordersToml('bad', 'link.csv'),
        'tables[0].path: resolves (through a symbolic link) outside reloads.data_dirs',
      ],
      [
        'missing file',
        ordersToml('bad', 'nope.csv'),
        'tables[0].path: file does not exist in any of reloads.data_dirs',
      ],
      [
        'bad type',
        ordersToml('bad', 'orders.csv').replace('type = "integer"', 'type = "int64"'),
        'tables[0].columns[0].type: expected one of string, integer, number, boolean, date',
      ],
      [
        'not a SELECT',
        sqlApp('DELETE FROM customers'),
        'tables[0].query: expected a SELECT (or WITH ... SELECT) statement, got DELETE',
      ],
      ['two statements', sqlApp('SELECT 1; SELECT 2'), 'tables[0].query: expected exactly one SQL statement'],
    ];
    for (const [name, text, why] of cases) {
      const file = `bad-${name.replace(/\W+/g, '-')}.toml`;
      const failed = await addApp(file, text).then(
        () => undefined,
        (err: { code: number; stderr: string }) => err,
      );
      expect(failed, name).toBeDefined();
      expect({ code: failed!.code, stderr: failed!.stderr }, name).toEqual({
        code: 1,
        stderr: `fortctl: ${join(inst.dir, file)}: ${why}\n`,
      });
    }
    const list = JSON.parse((await fortctl('--json', 'apps', 'list')).stdout) as { apps: { id: string }[] };
    expect(list.apps.map((a) => a.id)).not.toContain('bad');
  });

  it('a reload that fails (bad value) reports why without the value and keeps the previous version served', async () => {
    await addApp('orders.toml', ordersToml('orders', 'orders.csv'));
    await fortctl('reloads', 'start', 'orders');
    const [first] = await settled('orders', 1);
    expect(first).toMatchObject({ state: 'succeeded' });
    writeFileSync(join(sources, 'orders.csv'), `${ordersCsv(3, 'v2')}4,v2,NOT-A-NUMBER-SECRETVALUE,true,2026-01-01\n`);
    await publish(event('reload.requested', { appId: 'orders' }));
    const all = await settled('orders', 2);
    expect(all[1]).toMatchObject({ state: 'failed', errorCode: 'FORT_ERR_RELOAD_SOURCE' });
    expect(all[1]!.errorMessage).toMatch(/row 4/);
    expect(all[1]!.errorMessage).toMatch(/amount/);
    // A marker that cannot occur in the report's ids or times (a UUID once held 4711).
    expect(all[1]!.errorMessage).not.toContain('SECRETVALUE');
    const failed = await dev.reloadStatus.waitFor((r) => r.appId === 'orders' && r.type === 'reload.failed', 10_000);
    expect(JSON.stringify(failed.data)).not.toContain('SECRETVALUE');
    const page = await rows('orders', 'limit=2');
    expect(page.body.total).toBe(120);
    expect(page.body.rows[0]![1]).toBe('v1');
    writeFileSync(join(sources, 'orders.csv'), ordersCsv(120, 'v1'));
  });

  it('a redelivered event queues one reload; 100 requests while one runs are coalesced into one more', async () => {
    writeFileSync(join(sources, 'big.csv'), ordersCsv(200_000, 'big'));
    await addApp('big.toml', ordersToml('big', 'big.csv'));
    const e = event('reload.requested', { appId: 'big' });
    await publish(e);
    await publish(e); // the same envelope (same id) again: the inbox has seen it
    await eventually(
      () => (reloads('big').some((r) => r.state === 'running') ? true : undefined),
      10_000,
      'the big reload to run',
    );
    for (let i = 0; i < 100; i++) void publish(event('reload.requested', { appId: 'big' }));
    const done = await settled('big', 2);
    expect(done.map((r) => [r.state, r.requests])).toEqual([
      ['succeeded', 1],
      ['succeeded', 100],
    ]);
  });

  it('cancels: a reload.cancel event stops a running load, fortctl cancels a queued one; fortctl lists both', async () => {
    writeFileSync(join(sources, 'big.csv'), ordersCsv(400_000, 'c'));
    await addApp('big.toml', ordersToml('big', 'big.csv'));
    const before = reloads('big').length;
    await fortctl('reloads', 'start', 'big');
    await eventually(
      () => (reloads('big').some((r) => r.state === 'running') ? true : undefined),
      10_000,
      'the big reload to run',
    );
    // In-process admin calls: quick enough to queue and cancel while the first load still runs.
    const admin = createAdminClient({
      url: `https://127.0.0.1:${inst.layout.ports.admin}`,
      tls: loadTlsMaterial({ ca: pki.trustZone.ca, cert: pki.trustZone.fortctlCert, key: pki.trustZone.fortctlKey }),
    });
    const queued = (await admin.startReload('big')).body;
    expect(queued.reload.state).toBe('queued');
    expect((await admin.cancelReload(queued.reload.id)).body).toEqual({ result: 'cancelled' });
    admin.close();
    const running = reloads('big').find((r) => r.state === 'running')!;
    await publish(event('reload.cancel', { reloadId: running.id }));
    const all = await settled('big', before + 2);
    expect(all.slice(-2).map((r) => [r.id, r.state, r.errorCode])).toEqual([
      [running.id, 'cancelled', 'FORT_ERR_RELOAD_CANCELLED'],
      [queued.reload.id, 'cancelled', 'FORT_ERR_RELOAD_CANCELLED'],
    ]);
    await dev.reloadStatus.waitFor((r) => r.type === 'reload.cancelled' && r.reloadId === running.id, 10_000);
    const listed = (await fortctl('reloads', 'list', '--app', 'big', '--state', 'cancelled')).stdout;
    expect(listed.split('\n')[0]).toMatch(/^ID +APP +STATE +REQUESTED +ATTEMPTS +ROWS +ERROR$/);
    expect(listed).toContain(running.id);
    expect(listed).toContain(queued.reload.id);
    // A finished reload cannot be cancelled again; an unknown one is not found: exit 1 as every 409 and 404 (one exit map).
    await expect(fortctl('reloads', 'cancel', running.id)).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('FORT_ERR_CONFLICT'),
    });
    await expect(fortctl('reloads', 'start', 'no-such-app')).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('FORT_ERR_NOT_FOUND: no app no-such-app on this fort'),
    });
  });

  it('readers during version switches never see a mix of two versions', async () => {
    await addApp('orders.toml', ordersToml('orders', 'orders.csv'));
    let stop = false;
    const seen: string[] = [];
    const reader = (async () => {
      while (!stop) {
        const page = await rows('orders', 'offset=0&limit=1000');
        if (page.status !== 200) continue;
        const tags = new Set(page.body.rows.map((r) => r[1] as string));
        expect(tags.size, 'one version per page').toBe(1);
        expect(page.body.rows).toHaveLength(page.body.total > 1000 ? 1000 : page.body.total);
        seen.push([...tags][0]!);
      }
    })();
    for (let v = 0; v < 6; v++) {
      writeFileSync(join(sources, 'orders.csv'), ordersCsv(300 + v * 100, `s${v}`));
      const before = reloads('orders').length;
      await publish(event('reload.requested', { appId: 'orders' }));
      await settled('orders', before + 1);
    }
    stop = true;
    await reader;
    expect(new Set(seen).size).toBeGreaterThanOrEqual(3);
  });

  it('survives kill -9 at random points of reloads: each completes exactly once, no partial version, no temp files', async () => {
    writeFileSync(join(sources, 'big.csv'), ordersCsv(150_000, 'k'));
    await addApp('big.toml', ordersToml('big', 'big.csv'));
    for (let round = 0; round < 10; round++) {
      const before = reloads('big').filter((r) => r.state === 'succeeded').length;
      await publish(event('reload.requested', { appId: 'big' }));
      await eventually(
        () => (reloads('big').some((r) => r.state === 'running') ? true : undefined),
        10_000,
        'the reload to run',
      );
      // A random point of the load (it takes a few hundred ms), sometimes just after it.
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 400)));
      agent.kill('SIGKILL');
      await agent.waitExit(5000);
      await agent.stop();
      agent = await startAgent(inst.files.agent);
      await agent.waitReady(20_000);
      const after = await settled('big', 1);
      expect(after.filter((r) => r.state === 'succeeded').length, `round ${round}`).toBe(before + 1);
      const page = await rows('big', 'limit=1');
      expect(page.body.total).toBe(150_000);
    }
    // Some kills landed during a load: those reloads were started again after the restart.
    const killedRounds = reloads('big')
      .slice(-10)
      .filter((r) => r.attempts > 1);
    expect(killedRounds.length).toBeGreaterThan(0);
    const appDir = join(inst.dir, 'data/agent/apps/big');
    expect(readdirSync(appDir).filter((f) => !/^\d+\.sqlite$/.test(f))).toEqual([]);
    const db = new Database(join(inst.dir, 'data/agent/agent.db'), { readonly: true });
    const files = db.prepare("SELECT file FROM app_versions WHERE app_id = 'big'").pluck().all() as string[];
    db.close();
    expect(readdirSync(appDir).sort()).toEqual(files.map((f) => f.split('/')[1]).sort());
  });
});
