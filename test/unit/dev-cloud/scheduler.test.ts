import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadDevCloudConfig } from '../../../dev-cloud/config.js';
import {
  startReloadScheduler,
  type ReloadRequestedEvent,
  type ReloadScheduler,
} from '../../../dev-cloud/scheduler/scheduler.js';
import { createReloadStatusLog, type ReloadStatusRecord } from '../../../dev-cloud/scheduler/status-log.js';
import { formatReloadTable } from '../../../dev-cloud/scheduler/format.js';
import type { BridgeMessage } from '../../../dev-cloud/iot/bridge.js';
import { parseEvent } from '../../../agent/events/envelope.js';
import { tempDir } from '../../helpers/fort.js';

const BASE = `[server]\nport = 8443\n[server.tls]\ncert = "c.pem"\nkey = "k.pem"\n`;
const IOT = `[iot]\nport = 8883\n`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const log = pino({ level: 'silent' });

function load(toml: string) {
  const file = join(tempDir('dcsched'), 'dev-cloud.toml');
  writeFileSync(file, BASE + toml);
  return () => loadDevCloudConfig(file);
}

describe('dev-cloud.toml [scheduler]', () => {
  it('is optional', () => {
    expect(load(IOT)().scheduler).toBeUndefined();
  });

  it('takes 5- and 6-field croner patterns and numbers schedules without an id', () => {
    const c = load(
      `${IOT}[[scheduler.schedules]]\nfort = "fort-dev-1"\napp = "demo"\ncron = "*/1 * * * *"\n` +
        `[[scheduler.schedules]]\nid = "fast"\nfort = "fort-dev-2"\napp = "sales"\ncron = "*/5 * * * * *"\n` +
        `[[scheduler.schedules]]\nfort = "fort-dev-1"\napp = "other"\ncron = "@hourly"\n`,
    )();
    expect(c.scheduler).toEqual({
      schedules: [
        { id: 'schedule-1', fort: 'fort-dev-1', app: 'demo', cron: '*/1 * * * *' },
        { id: 'fast', fort: 'fort-dev-2', app: 'sales', cron: '*/5 * * * * *' },
        { id: 'schedule-3', fort: 'fort-dev-1', app: 'other', cron: '@hourly' },
      ],
    });
    expect(load(`${IOT}[scheduler]\n`)().scheduler).toEqual({ schedules: [] });
  });

  it('names each bad field', () => {
    const config = load(
      `${IOT}[[scheduler.schedules]]\nfort = "fort-dev-1"\napp = "demo"\ncron = "61 * * * *"\n` +
        `[[scheduler.schedules]]\nfort = "fort-dev-1"\napp = "demo"\ncron = "every minute"\n` +
        `[[scheduler.schedules]]\nfort = "-x"\napp = "demo"\ncron = "* * * * *"\nwhen = "now"\n`,
    );
    expect(() => config()).toThrow(
      [
        'dev-cloud.toml: scheduler.schedules.0.cron: expected a cron pattern (5 fields, or 6 with seconds first): Invalid value for minute: 61, got "61 * * * *"',
        'dev-cloud.toml: scheduler.schedules.1.cron: expected a cron pattern (5 fields, or 6 with seconds first): invalid configuration format, exactly five or six space separated parts are required, got "every minute"',
        'dev-cloud.toml: scheduler.schedules.2.fort: expected 1-128 characters of letters, digits, ".", "_", "-" (not starting with a symbol), got "-x"',
        'dev-cloud.toml: scheduler.schedules.2.when: unknown field (check the spelling; see the configuration reference)',
      ].join('\n'),
    );
  });

  it('refuses duplicate schedule ids', () => {
    const config = load(
      `${IOT}[[scheduler.schedules]]\nid = "a"\nfort = "f"\napp = "x"\ncron = "* * * * *"\n[[scheduler.schedules]]\nid = "a"\nfort = "f"\napp = "y"\ncron = "* * * * *"\n`,
    );
    expect(() => config()).toThrow('dev-cloud.toml: scheduler.schedules.1.id: duplicate schedule id a, got "a"');
  });

  it('needs [iot]', () => {
    const config = load(`[[scheduler.schedules]]\nfort = "fort-dev-1"\napp = "demo"\ncron = "* * * * *"\n`);
    expect(() => config()).toThrow(
      /^dev-cloud\.toml: scheduler: needs an \[iot\] section \(reload\.requested goes out over the IoT bridge\)$/,
    );
  });
});

/** A bridge stand-in recording publishes; `next()` resolves with the next one. */
function fakeBridge(opts: { fail?: boolean } = {}) {
  const published: { topic: string; payload: Buffer }[] = [];
  const waiters: ((m: { topic: string; payload: Buffer }) => void)[] = [];
  return {
    published,
    publish(topic: string, payload: Buffer | string) {
      if (opts.fail) return Promise.reject(new Error('broker closed'));
      const m = { topic, payload: Buffer.from(payload) };
      published.push(m);
      waiters.splice(0).forEach((w) => w(m));
      return Promise.resolve();
    },
    next(timeoutMs: number) {
      return new Promise<{ topic: string; payload: Buffer }>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`nothing published within ${timeoutMs} ms`)), timeoutMs);
        waiters.push((m) => {
          clearTimeout(t);
          resolve(m);
        });
      });
    },
  };
}

describe('reload scheduler', () => {
  let scheduler: ReloadScheduler | undefined;
  afterEach(() => scheduler?.stop());
  const NOW = new Date('2026-11-23T12:00:00.000Z');

  it('publishes a reload.requested envelope on forts/<fort>/events when a schedule fires', async () => {
    const bridge = fakeBridge();
    scheduler = startReloadScheduler({
      schedules: [{ id: 'every-second', fort: 'fort-a', app: 'demo', cron: '*/1 * * * * *' }],
      bridge,
      now: () => NOW,
      log,
    });
    expect(scheduler.jobs.map((j) => [j.id, j.fort, j.app])).toEqual([['every-second', 'fort-a', 'demo']]);
    expect(scheduler.jobs[0]!.nextRun()!.getTime() - Date.now()).toBeLessThanOrEqual(1000);
    const m = await bridge.next(3000);
    expect(m.topic).toBe('forts/fort-a/events');
    const event = JSON.parse(m.payload.toString('utf8')) as ReloadRequestedEvent;
    expect(event).toEqual({
      v: 1,
      id: expect.stringMatching(UUID),
      type: 'reload.requested',
      fortId: 'fort-a',
      ts: '2026-11-23T12:00:00.000Z',
      data: { appId: 'demo', scheduleId: 'every-second', requestedBy: 'schedule' },
    });
    // What the agent accepts from its events topic.
    expect(parseEvent(m.payload, 'fort-a')).toEqual({ ok: true, event });
  });

  it('trigger publishes one now, without a scheduleId; fire runs a configured schedule now', async () => {
    const bridge = fakeBridge();
    scheduler = startReloadScheduler({
      schedules: [{ fort: 'fort-b', app: 'nightly', cron: '0 3 * * *' }],
      bridge,
      now: () => NOW,
      log,
    });
    const seen: ReloadRequestedEvent[] = [];
    scheduler.events.on('published', (e) => seen.push(e));
    const event = await scheduler.trigger('fort-a', 'sales');
    expect(bridge.published).toHaveLength(1);
    expect(bridge.published[0]!.topic).toBe('forts/fort-a/events');
    expect(JSON.parse(bridge.published[0]!.payload.toString('utf8'))).toEqual(event);
    expect(event).toEqual({
      v: 1,
      id: expect.stringMatching(UUID),
      type: 'reload.requested',
      fortId: 'fort-a',
      ts: NOW.toISOString(),
      data: { appId: 'sales', requestedBy: 'schedule' },
    });
    expect('scheduleId' in event.data).toBe(false);

    const fired = await scheduler.fire('schedule-1');
    expect(fired).toMatchObject({
      fortId: 'fort-b',
      data: { appId: 'nightly', scheduleId: 'schedule-1', requestedBy: 'schedule' },
    });
    expect(fired.id).not.toBe(event.id);
    expect(bridge.published.map((p) => p.topic)).toEqual(['forts/fort-a/events', 'forts/fort-b/events']);
    expect(seen).toEqual([event, fired]);
    await expect(scheduler.fire('nope')).rejects.toThrow('no schedule nope');
  });

  it('stop() ends every job', () => {
    scheduler = startReloadScheduler({
      schedules: [
        { fort: 'f', app: 'a', cron: '* * * * *' },
        { fort: 'f', app: 'b', cron: '0 0 * * *' },
      ],
      bridge: fakeBridge(),
      log,
    });
    expect(scheduler.jobs.map((j) => j.nextRun())).not.toContain(null);
    scheduler.stop();
    expect(scheduler.jobs.map((j) => j.nextRun())).toEqual([null, null]);
  });

  it('reports a failed scheduled publish as an error event', async () => {
    const bridge = fakeBridge({ fail: true });
    scheduler = startReloadScheduler({
      schedules: [{ id: 's', fort: 'f', app: 'a', cron: '*/1 * * * * *' }],
      bridge,
      log,
    });
    const [err, job] = await new Promise<[Error, { id: string }]>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no error event within 3 s')), 3000);
      scheduler!.events.once('error', (e, j) => {
        clearTimeout(t);
        resolve([e, j]);
      });
    });
    expect([err.message, job.id]).toEqual(['broker closed', 's']);
    await expect(scheduler.trigger('f', 'a')).rejects.toThrow('broker closed');
  });

  it('refuses a bad pattern or a duplicate id at start', () => {
    expect(() =>
      startReloadScheduler({ schedules: [{ fort: 'f', app: 'a', cron: 'soon' }], bridge: fakeBridge(), log }),
    ).toThrow(/five or six/);
    expect(() =>
      startReloadScheduler({
        schedules: [
          { id: 'x', fort: 'f', app: 'a', cron: '* * * * *' },
          { id: 'x', fort: 'f', app: 'b', cron: '* * * * *' },
        ],
        bridge: fakeBridge(),
        log,
      }),
    ).toThrow('duplicate schedule id x');
  });
});

const status = (
  fortId: string,
  type: string,
  data: Record<string, unknown>,
  at = new Date(),
  over: Record<string, unknown> = {},
): BridgeMessage => ({
  topic: `forts/${fortId}/status`,
  payload: Buffer.from(
    JSON.stringify({
      v: 1,
      id: '0b5c3c5e-8d1a-4c1e-9a52-2d3d1f1f0a01',
      type,
      fortId,
      ts: '2026-11-23T12:00:00.000Z',
      data,
      ...over,
    }),
  ),
  clientId: fortId,
  at,
});

describe('reload status log', () => {
  it('records reload.* status events with their whole data, and nothing else', () => {
    const statusLog = createReloadStatusLog();
    const at = new Date('2026-11-23T12:00:01.000Z');
    const data = { reloadId: 'r1', appId: 'demo', rows: 42, durationMs: 1234, versionId: 7, extra: { nested: true } };
    expect(statusLog.record(status('fort-a', 'reload.succeeded', data, at))).toEqual({
      at: '2026-11-23T12:00:01.000Z',
      fortId: 'fort-a',
      type: 'reload.succeeded',
      reloadId: 'r1',
      appId: 'demo',
      data,
      eventId: '0b5c3c5e-8d1a-4c1e-9a52-2d3d1f1f0a01',
      ts: '2026-11-23T12:00:00.000Z',
    });
    for (const m of [
      status('fort-a', 'health', { ok: true }),
      status('fort-a', 'reloading', { appId: 'demo' }),
      { ...status('fort-a', 'reload.started', { appId: 'demo' }), topic: 'forts/fort-a/events' },
      { ...status('fort-a', 'reload.started', { appId: 'demo' }), topic: 'forts/fort-a/status/x' },
      { ...status('fort-a', 'reload.started', { appId: 'demo' }), payload: Buffer.from('not json') },
      { ...status('fort-a', 'reload.started', { appId: 'demo' }), payload: Buffer.from('["reload.started"]') },
      status('fort-a', 'reload.started', { appId: 'demo' }, new Date(), { fortId: 'fort-b' }),
    ]) {
      expect(statusLog.record(m)).toBeUndefined();
    }
    const failed = statusLog.record(
      status('fort-a', 'reload.failed', {
        reloadId: 'r2',
        appId: 'demo',
        error: { code: 'FORT_ERR_RELOAD_SOURCE', message: 'orders.csv: row 3' },
      }),
    )!;
    expect(statusLog.list().map((r) => [r.type, r.reloadId])).toEqual([
      ['reload.succeeded', 'r1'],
      ['reload.failed', 'r2'],
    ]);
    expect(failed.data).toEqual({
      reloadId: 'r2',
      appId: 'demo',
      error: { code: 'FORT_ERR_RELOAD_SOURCE', message: 'orders.csv: row 3' },
    });
    // No data or ids: recorded with nulls.
    expect(
      statusLog.record({
        ...status('fort-c', 'reload.cancelled', {}),
        payload: Buffer.from('{"type":"reload.cancelled"}'),
      }),
    ).toMatchObject({ fortId: 'fort-c', reloadId: null, appId: null, data: {}, eventId: null, ts: null });
  });

  it('keeps the last `max` records and filters by fort, app and time', () => {
    const statusLog = createReloadStatusLog({ max: 3 });
    const t = (s: number) => new Date(Date.UTC(2026, 10, 23, 12, 0, s));
    statusLog.record(status('fort-a', 'reload.started', { reloadId: 'r0', appId: 'demo' }, t(0)));
    statusLog.record(status('fort-a', 'reload.started', { reloadId: 'r1', appId: 'demo' }, t(1)));
    statusLog.record(status('fort-b', 'reload.started', { reloadId: 'r2', appId: 'demo' }, t(2)));
    statusLog.record(status('fort-a', 'reload.started', { reloadId: 'r3', appId: 'sales' }, t(3)));
    statusLog.record(status('fort-a', 'reload.succeeded', { reloadId: 'r3', appId: 'sales' }, t(4)));
    const ids = (rs: ReloadStatusRecord[]) => rs.map((r) => `${r.reloadId}:${r.type}`);
    expect(ids(statusLog.list())).toEqual(['r2:reload.started', 'r3:reload.started', 'r3:reload.succeeded']);
    expect(ids(statusLog.list({ fortId: 'fort-a' }))).toEqual(['r3:reload.started', 'r3:reload.succeeded']);
    expect(ids(statusLog.list({ appId: 'demo' }))).toEqual(['r2:reload.started']);
    expect(ids(statusLog.list({ fortId: 'fort-b', appId: 'sales' }))).toEqual([]);
    expect(ids(statusLog.list({ since: t(3) }))).toEqual(['r3:reload.started', 'r3:reload.succeeded']);
    expect(() => createReloadStatusLog({ max: 0 })).toThrow(RangeError);
  });

  it('follows the bridge until closed; waitFor sees past and future records and gives up at its deadline', async () => {
    let listener: ((m: BridgeMessage) => void) | undefined;
    const bridge = {
      onPublish(l: (m: BridgeMessage) => void) {
        listener = l;
        return () => (listener = undefined);
      },
    };
    const statusLog = createReloadStatusLog({ bridge });
    listener!(status('fort-a', 'reload.started', { reloadId: 'r1', appId: 'demo' }));
    await expect(statusLog.waitFor((r) => r.reloadId === 'r1', 10)).resolves.toMatchObject({ type: 'reload.started' });
    const later = statusLog.waitFor((r) => r.type === 'reload.succeeded', 5000);
    listener!(status('fort-a', 'reload.succeeded', { reloadId: 'r1', appId: 'demo' }));
    await expect(later).resolves.toMatchObject({ fortId: 'fort-a', reloadId: 'r1', type: 'reload.succeeded' });
    await expect(statusLog.waitFor((r) => r.type === 'reload.failed', 20)).rejects.toThrow(
      'no matching reload status event within 20 ms; last recorded: fort-a reload.started demo r1; fort-a reload.succeeded demo r1',
    );
    expect(statusLog.events.listenerCount('status')).toBe(0);
    statusLog.close();
    expect(listener).toBeUndefined();
  });
});

describe('dev-cloud reloads table', () => {
  it('shows rows, duration and version of a success and the error of a failure', () => {
    const base = { fortId: 'fort-dev-1', appId: 'demo', eventId: null, ts: null };
    const out = formatReloadTable([
      {
        ...base,
        at: '2026-11-23T12:00:00.000Z',
        type: 'reload.started',
        reloadId: 'r1',
        data: { reloadId: 'r1', appId: 'demo', attempt: 1 },
      },
      {
        ...base,
        at: '2026-11-23T12:00:02.000Z',
        type: 'reload.succeeded',
        reloadId: 'r1',
        data: { rows: 1200, durationMs: 2345, versionId: 4 },
      },
      {
        ...base,
        at: '2026-11-23T12:01:00.000Z',
        type: 'reload.failed',
        reloadId: 'r2',
        data: { code: 'FORT_ERR_RELOAD_SOURCE', message: 'orders.csv: row 3:\ncolumn "qty"', durationMs: 5 },
      },
      {
        ...base,
        at: '2026-11-23T12:01:30.000Z',
        type: 'reload.failed',
        reloadId: 'r3',
        data: { error: { code: 'FORT_ERR_RELOAD_TIMEOUT', message: 'over 600 s' } },
      },
      {
        ...base,
        at: '2026-11-23T12:02:00.000Z',
        appId: null,
        type: 'reload.cancelled',
        reloadId: null,
        data: { errorCode: 'FORT_ERR_RELOAD_CANCELLED', errorMessage: 'by alice' },
      },
    ]);
    expect(out).toBe(
      [
        'TIME                      FORT        APP   TYPE              RELOAD  DETAIL',
        '2026-11-23T12:00:00.000Z  fort-dev-1  demo  reload.started    r1      attempt=1',
        '2026-11-23T12:00:02.000Z  fort-dev-1  demo  reload.succeeded  r1      rows=1200 duration=2.3s version=4',
        '2026-11-23T12:01:00.000Z  fort-dev-1  demo  reload.failed     r2      FORT_ERR_RELOAD_SOURCE: orders.csv: row 3: column "qty"',
        '2026-11-23T12:01:30.000Z  fort-dev-1  demo  reload.failed     r3      FORT_ERR_RELOAD_TIMEOUT: over 600 s',
        '2026-11-23T12:02:00.000Z  fort-dev-1  -     reload.cancelled  -       FORT_ERR_RELOAD_CANCELLED: by alice',
        '',
      ].join('\n'),
    );
    expect(formatReloadTable([])).toBe('no reload status events recorded\n');
  });
});
