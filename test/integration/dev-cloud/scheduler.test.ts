import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { MqttClient } from 'mqtt';
import { DIST, tempDir, testPki } from '../../helpers/fort.js';
import {
  cloudRequest,
  connectBareClient,
  testDevCloud,
  type CloudResponse,
  type TestDevCloud,
} from '../../helpers/dev-cloud.js';
import type { ReloadRequestedEvent } from '../../../dev-cloud/scheduler/scheduler.js';
import type { ReloadStatusRecord } from '../../../dev-cloud/scheduler/status-log.js';

const FORT = 'fort-sched-1';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const run = promisify(execFile);

/** The next event on the fort's events topic matching `pred`, or a rejection at the deadline. */
function nextEvent(
  client: MqttClient,
  pred: (e: ReloadRequestedEvent) => boolean,
  timeoutMs = 5000,
): Promise<ReloadRequestedEvent> {
  return new Promise((resolve, reject) => {
    const onMessage = (topic: string, payload: Buffer) => {
      if (topic !== `forts/${FORT}/events`) return;
      const e = JSON.parse(payload.toString('utf8')) as ReloadRequestedEvent;
      if (!pred(e)) return;
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve(e);
    };
    const timer = setTimeout(() => {
      client.off('message', onMessage);
      reject(new Error(`no matching event on forts/${FORT}/events within ${timeoutMs} ms`));
    }, timeoutMs);
    client.on('message', onMessage);
  });
}

describe('dev cloud: reload scheduler over the IoT bridge', () => {
  let dev: TestDevCloud;
  let fort: MqttClient;
  let home: string;
  beforeAll(async () => {
    const pki = await testPki();
    dev = await testDevCloud(pki, {
      schedules: [{ id: 'every-second', fort: FORT, app: 'demo', cron: '*/1 * * * * *' }],
    });
    fort = await connectBareClient(dev, FORT);
    await fort.subscribeAsync(`forts/${FORT}/events`, { qos: 1 });
    home = tempDir('devhome');
    writeFileSync(
      join(home, 'dev-cloud.json'),
      JSON.stringify({ cloud: { url: dev.apiUrl }, ca: { cloudServer: pki.cloudServer.ca } }),
    );
  });
  afterAll(async () => {
    await fort?.endAsync();
    await dev?.stop();
  });

  const call = (method: string, path: string, opts: Parameters<typeof cloudRequest>[4] = {}) =>
    cloudRequest(dev.apiUrl, dev.ca, method, path, opts);
  const json = <T>(r: CloudResponse) => r.json() as T;
  const cli = (...args: string[]) => run(process.execPath, [join(DIST, 'dev-cloud/cli.js'), ...args, '--home', home]);

  it('a schedule sends the fort reload.requested for its app', async () => {
    expect(dev.scheduler.jobs.map((j) => [j.id, j.fort, j.app, j.cron])).toEqual([
      ['every-second', FORT, 'demo', '*/1 * * * * *'],
    ]);
    const e = await nextEvent(fort, (x) => x.type === 'reload.requested');
    expect(e).toEqual({
      v: 1,
      id: expect.stringMatching(UUID),
      type: 'reload.requested',
      fortId: FORT,
      ts: expect.any(String),
      data: { appId: 'demo', scheduleId: 'every-second', requestedBy: 'schedule' },
    });
    expect(Math.abs(Date.parse(e.ts) - Date.now())).toBeLessThan(5000);
    // The rest of the file triggers by hand.
    dev.scheduler.stop();
  });

  it('records the status events the fort publishes and serves them at GET /dev/v1/reloads', async () => {
    const started = { reloadId: 'r-1', appId: 'demo', attempt: 1 };
    const succeeded = { reloadId: 'r-1', appId: 'demo', rows: 1200, durationMs: 2345, versionId: 4 };
    const failed = {
      reloadId: 'r-2',
      appId: 'sales',
      code: 'FORT_ERR_RELOAD_SOURCE',
      message: 'orders.csv: row 3',
      durationMs: 12,
    };
    const envelope = (type: string, data: object) =>
      JSON.stringify({ v: 1, id: crypto.randomUUID(), type, fortId: FORT, ts: new Date().toISOString(), data });
    await fort.publishAsync(`forts/${FORT}/status`, envelope('health', { ok: true }), { qos: 1 });
    await fort.publishAsync(`forts/${FORT}/status`, envelope('reload.started', started), { qos: 1 });
    await fort.publishAsync(`forts/${FORT}/status`, envelope('reload.succeeded', succeeded), { qos: 1 });
    await fort.publishAsync(`forts/${FORT}/status`, envelope('reload.failed', failed), { qos: 1 });
    await dev.reloadStatus.waitFor((r) => r.type === 'reload.failed', 5000);

    const res = await call('GET', `/dev/v1/reloads?fort=${FORT}`);
    expect(res.status).toBe(200);
    const list = json<ReloadStatusRecord[]>(res);
    expect(list.map(({ fortId, type, reloadId, appId, data }) => ({ fortId, type, reloadId, appId, data }))).toEqual([
      { fortId: FORT, type: 'reload.started', reloadId: 'r-1', appId: 'demo', data: started },
      { fortId: FORT, type: 'reload.succeeded', reloadId: 'r-1', appId: 'demo', data: succeeded },
      { fortId: FORT, type: 'reload.failed', reloadId: 'r-2', appId: 'sales', data: failed },
    ]);
    expect(list.every((r) => Math.abs(Date.parse(r.at) - Date.now()) < 10_000)).toBe(true);
    expect(
      json<ReloadStatusRecord[]>(await call('GET', `/dev/v1/reloads?fort=${FORT}&app=sales`)).map((r) => r.reloadId),
    ).toEqual(['r-2']);
    expect(json<unknown[]>(await call('GET', '/dev/v1/reloads?fort=fort-other'))).toEqual([]);
    expect(
      json<unknown[]>(
        await call('GET', `/dev/v1/reloads?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`),
      ),
    ).toEqual([]);

    const bad = await call('GET', '/dev/v1/reloads?since=yesterday');
    expect([bad.status, json<{ code: string; detail: string }>(bad)]).toEqual([
      400,
      expect.objectContaining({ code: 'FORT_ERR_BAD_REQUEST', detail: 'since: expected an ISO 8601 time' }),
    ]);
  });

  it('`dev-cloud reloads` prints them as a table (or JSON)', async () => {
    const table = (await cli('reloads', '--fort', FORT)).stdout.split('\n');
    expect(table[0]).toMatch(/^TIME\s+FORT\s+APP\s+TYPE\s+RELOAD\s+DETAIL$/);
    expect(table.slice(1, 4).map((l) => l.replace(/^\S+\s+/, '').replace(/\s+/g, ' '))).toEqual([
      `${FORT} demo reload.started r-1 attempt=1`,
      `${FORT} demo reload.succeeded r-1 rows=1200 duration=2.3s version=4`,
      `${FORT} sales reload.failed r-2 FORT_ERR_RELOAD_SOURCE: orders.csv: row 3`,
    ]);
    const asJson = JSON.parse((await cli('reloads', '--app', 'sales', '--json')).stdout) as ReloadStatusRecord[];
    expect(asJson).toEqual(dev.reloadStatus.list({ appId: 'sales' }));
    expect(asJson).toHaveLength(1);
  });

  it('POST /dev/v1/reloads and `dev-cloud reload` send reload.requested now', async () => {
    const received = nextEvent(fort, (e) => e.data.appId === 'sales');
    const res = await call('POST', '/dev/v1/reloads', { json: { fort: FORT, app: 'sales' } });
    expect(res.status).toBe(200);
    const sent = json<ReloadRequestedEvent>(res);
    expect(sent).toEqual({
      v: 1,
      id: expect.stringMatching(UUID),
      type: 'reload.requested',
      fortId: FORT,
      ts: expect.any(String),
      data: { appId: 'sales', requestedBy: 'schedule' },
    });
    expect(await received).toEqual(sent);

    const viaCli = nextEvent(fort, (e) => e.data.appId === 'inventory');
    const { stdout } = await cli('reload', '--fort', FORT, '--app', 'inventory');
    const printed = JSON.parse(stdout) as ReloadRequestedEvent;
    expect(await viaCli).toEqual(printed);

    const bad = await call('POST', '/dev/v1/reloads', { json: { fort: FORT } });
    expect([bad.status, json<{ code: string; detail: string }>(bad).detail]).toEqual([
      400,
      'app: expected an identifier',
    ]);
  });
});
