import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { parse, stringify } from 'smol-toml';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import type { PolicyInput } from '../../../dev-cloud/cloud-api/policy.js';
import { createAdminClient, type AdminClient } from '../../../lib/admin-client.js';
import { loadTlsMaterial } from '../../../lib/tls.js';
import {
  DIST,
  eventually,
  jsonLines,
  startAgent,
  testInstallation,
  testPki,
  type TestInstallation,
} from '../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import { httpsCall } from '../../helpers/https.js';
import { mountSmallFs, type SmallFs } from '../../helpers/small-fs.js';

const run = promisify(execFile);
const FORT = 'fort-dev-1';
const POLICY: PolicyInput = {
  decision_ttl_seconds: 600,
  tenants: {
    t1: {
      forts: [FORT],
      users: { alice: { groups: ['g'] } },
      spaces: { sales: { g: ['app.list', 'app.read', 'app.reload'] } },
      apps: { orders: { space: 'sales' } },
    },
  },
};

const csv = (n: number, tag: string) =>
  `id,tag,amount\n${Array.from({ length: n }, (_, i) => `${i + 1},${tag},${(i * 1.5).toFixed(1)}`).join('\n')}\n`;
const appToml = (id: string) => `id = "${id}"
name = "${id}"
space = "sales"
[[tables]]
name = "orders"
connector = "csv"
path = "${id}.csv"
columns = [ { name = "id", type = "integer" }, { name = "tag", type = "string" }, { name = "amount", type = "number" } ]
`;

/**
 * The agent's data directory on a real 48 MiB file system that fills up (ENOSPC from the
 * kernel, SQLITE_FULL from SQLite): events are not acknowledged and come again, a reload fails
 * with its code while the old version serves, audit entries wait in memory, and everything
 * resumes by itself when space returns, without a restart.
 */
describe('a full disk under the agent', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud;
  let agent: Supervised;
  let fs: SmallFs;
  let admin: AdminClient;
  let base: string;
  let ca: Buffer;
  let token: string;
  const sources = () => inst.layout.sourcesDir!;
  const dbFile = () => join(inst.layout.dataDir, 'agent/agent.db');

  const fortctl = (...args: string[]) =>
    run(process.execPath, [join(DIST, 'fortctl/main.js'), '--config', inst.files.fortctl, ...args]);
  const query = <T>(file: string, sql: string, ...params: unknown[]) => {
    const db = new Database(file, { readonly: true });
    try {
      return db.prepare(sql).all(...params) as T[];
    } finally {
      db.close();
    }
  };
  const reloads = (app: string) =>
    query<{ id: string; state: string; requests: number; errorCode: string | null; errorMessage: string | null }>(
      dbFile(),
      'SELECT id, state, requests, error_code AS errorCode, error_message AS errorMessage FROM reloads WHERE app_id = ? ORDER BY requested_at',
      app,
    );
  const settled = (app: string, count: number) =>
    eventually(
      () => {
        const r = reloads(app);
        return r.length >= count && r.every((x) => !['queued', 'running'].includes(x.state)) ? r : undefined;
      },
      60_000,
      `${count} reload(s) of ${app} to finish`,
    );
  const publish = (type: string, data: Record<string, unknown>) => {
    const id = randomUUID();
    const e = { v: 1, id, type, fortId: FORT, ts: new Date().toISOString(), data };
    return dev.bridge.publish(`forts/${FORT}/events`, JSON.stringify(e)).then(() => id);
  };
  const rows = (app: string) =>
    httpsCall(base, ca, 'GET', `/api/v1/apps/${app}/tables/orders/rows?limit=2`, {
      headers: { authorization: `Bearer ${token}` },
    }).then((res) => ({ status: res.status, body: res.json() as { rows: unknown[][]; total: number } }));
  const module = async (name: string) => (await admin.health()).body.modules[name];
  /**
   * Empties `file`'s WAL (the agent's reads may make a checkpoint busy: tried again until done), so
   * that its next commit needs new blocks, which a full disk refuses.
   */
  const truncateWal = (file: string) =>
    eventually(
      () => {
        const db = new Database(file);
        try {
          const [r] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number }[];
          return r!.busy === 0 && r!.log === 0 ? true : undefined;
        } finally {
          db.close();
        }
      },
      10_000,
      `the WAL of ${file} truncated`,
    );

  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { fortId: FORT, iot: true, cloudAuth: true });
    fs = mountSmallFs(inst.layout.dataDir, 48);
    // A floor of 1 MiB (the default 256 would refuse every reload here) and a short backoff cap.
    const config = parse(readFileSync(inst.files.agent, 'utf8')) as Record<string, Record<string, unknown>>;
    config['store'] = { ...config['store'], disk_min_free_mib: 1 };
    config['iot'] = { ...config['iot'], reconnect_cap_ms: 2000 };
    writeFileSync(inst.files.agent, stringify(config));
    writeFileSync(join(sources(), 'orders.csv'), csv(100, 'v1'));
    dev = await testDevCloud(pki, { ports: inst.layout.ports, policy: POLICY });
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);
    admin = createAdminClient({
      url: `https://127.0.0.1:${inst.layout.ports.admin}`,
      tls: loadTlsMaterial({ ca: pki.trustZone.ca, cert: pki.trustZone.fortctlCert, key: pki.trustZone.fortctlKey }),
    });
    base = `https://127.0.0.1:${inst.layout.ports.clientApi}`;
    ca = readFileSync(pki.clientZone.ca);
    token = await dev.login('alice', 't1', 3600);
    writeFileSync(join(inst.dir, 'orders.toml'), appToml('orders'));
    await fortctl('apps', 'add', join(inst.dir, 'orders.toml'));
    await fortctl('reloads', 'start', 'orders');
    expect((await settled('orders', 1))[0]).toMatchObject({ state: 'succeeded' });
  });
  // A failed test must not leave the next one a full disk.
  afterEach(() => fs.free());
  afterAll(async () => {
    admin?.close();
    await agent?.stop();
    await dev?.stop();
    fs?.unmount();
    inst?.cleanup();
  });

  it('an event that cannot be stored is not acknowledged: it comes again and is handled once when space returns', async () => {
    const before = jsonLines(agent.stdout).length;
    await truncateWal(dbFile());
    fs.fill(0);
    const eventId = await publish('reload.requested', { appId: 'orders' });
    await eventually(
      () =>
        jsonLines(agent.stdout.slice(before)).filter(
          (l) => l['msg'] === 'inbound message not committed; dropping the connection so it is redelivered',
        ).length >= 2
          ? true
          : undefined,
      30_000,
      'the delivery refused twice (it came again)',
    );
    expect(query(dbFile(), 'SELECT id FROM inbox WHERE id = ?', eventId)).toEqual([]);
    expect(reloads('orders')).toHaveLength(1);
    // Nothing dead-lettered for want of space: the event is not junk.
    expect(query(dbFile(), 'SELECT event_id FROM dead_letters WHERE event_id = ?', eventId)).toEqual([]);
    await eventually(
      async () => ((await module('disk'))?.state === 'degraded' ? true : undefined),
      30_000,
      'disk degraded',
    );

    // An operator's change that must be stored says why it was not, instead of an internal error.
    writeFileSync(join(sources(), 'more.csv'), csv(1, 'm'));
    writeFileSync(join(inst.dir, 'more.toml'), appToml('more'));
    await expect(fortctl('apps', 'add', join(inst.dir, 'more.toml'))).rejects.toMatchObject({
      stderr: expect.stringMatching(
        /FORT_ERR_DISK_LOW: POST \/admin\/v1\/apps could not be stored: the fort's data disk is full/,
      ),
    });
    expect(query(dbFile(), "SELECT id FROM apps WHERE id = 'more'")).toEqual([]);

    fs.free();
    const all = await settled('orders', 2);
    expect(all.map((r) => [r.state, r.requests])).toEqual([
      ['succeeded', 1],
      ['succeeded', 1],
    ]);
    expect(query(dbFile(), 'SELECT id FROM inbox WHERE id = ?', eventId)).toHaveLength(1);
    expect(jsonLines(agent.stdout.slice(before)).some((l) => l['msg'] === 'inbound messages committed again')).toBe(
      true,
    );
    await dev.reloadStatus.waitFor(
      (r) => r.appId === 'orders' && r.type === 'reload.succeeded' && r.reloadId === all[1]!.id,
      10_000,
    );
    expect(agent.starts).toBe(1);
    await eventually(async () => ((await module('disk'))?.state === 'ready' ? true : undefined), 30_000, 'disk ready');
  });

  it('a reload that fills the disk fails with its code; the old version keeps serving and no partial file stays', async () => {
    writeFileSync(join(sources(), 'orders.csv'), csv(400_000, 'v2'));
    const appFiles = () => readdirSync(join(inst.layout.dataDir, 'agent', 'apps', 'orders')).sort();
    const filesBefore = appFiles();
    fs.fill(6 * 1024 * 1024);
    await fortctl('reloads', 'start', 'orders');
    const [, , failed] = await settled('orders', 3);
    expect(failed).toMatchObject({ state: 'failed', errorCode: 'FORT_ERR_RELOAD_TOO_LARGE' });
    expect(failed!.errorMessage).toMatch(/disk full/);
    expect(appFiles()).toEqual(filesBefore);
    const page = await rows('orders');
    expect(page).toMatchObject({ status: 200, body: { total: 100 } });
    expect(page.body.rows[0]![1]).toBe('v1');
    await dev.reloadStatus.waitFor((r) => r.reloadId === failed!.id && r.type === 'reload.failed', 10_000);

    fs.free();
    writeFileSync(join(sources(), 'orders.csv'), csv(100, 'v3'));
    await fortctl('reloads', 'start', 'orders');
    expect((await settled('orders', 4))[3]).toMatchObject({ state: 'succeeded' });
    expect((await rows('orders')).body.rows[0]![1]).toBe('v3');
  });

  it('audit entries wait in memory while the disk is full and are all written when it is not', async () => {
    const auditFile = join(inst.layout.dataDir, 'agent/audit.db');
    // Counted from the full disk on: the last read of the test before may still be on its way.
    let since = '';
    const reads = () =>
      query<{ n: number }>(
        auditFile,
        "SELECT count(*) AS n FROM audit WHERE actor = 'alice' AND action = 'app.read' AND ts >= ?",
        since,
      )[0]!.n;
    await truncateWal(auditFile);
    fs.fill(0);
    since = new Date().toISOString();
    for (let i = 0; i < 20; i++) expect((await rows('orders')).status).toBe(200);
    await eventually(
      async () => ((await module('audit'))?.state === 'degraded' ? true : undefined),
      10_000,
      'audit degraded',
    );
    expect(reads()).toBe(0);
    fs.free();
    await eventually(
      async () => ((await module('audit'))?.state === 'ready' ? true : undefined),
      10_000,
      'audit ready',
    );
    expect(reads()).toBe(20);
    expect(await module('audit')).toMatchObject({ detail: 'writable' });
  });
});
