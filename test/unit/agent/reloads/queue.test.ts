import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { openStore, type Store } from '../../../../agent/store/database.js';
import { createReloadQueue, type ReloadQueue } from '../../../../agent/reloads/queue.js';
import { NotFoundError } from '../../../../agent/apps/errors.js';
import { seedApp } from '../../../helpers/apps.js';
import { tempDir } from '../../../helpers/fort.js';

const log = pino({ level: 'silent' });

describe('reload queue', () => {
  let dir: string;
  let store: Store;
  let queue: ReloadQueue;
  let clock: number;

  beforeEach(() => {
    dir = tempDir('reload-queue');
    store = openStore({ path: join(dir, 'agent.db'), log });
    for (const id of ['sales', 'hr']) seedApp(store.db, join(dir, 'apps'), { id, name: id, space: 's' });
    clock = Date.parse('2026-01-01T00:00:00Z');
    queue = createReloadQueue({ db: store.db, now: () => new Date((clock += 1000)) });
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('queues one reload per app and folds further requests into it', () => {
    const first = queue.request('sales', 'event:1');
    expect(first).toMatchObject({
      coalesced: false,
      reload: { appId: 'sales', state: 'queued', source: 'event:1', requests: 1, attempts: 0 },
    });
    for (let i = 0; i < 99; i++) expect(queue.request('sales', `user:u${i}`).reload.id).toBe(first.reload.id);
    expect(queue.get(first.reload.id)?.requests).toBe(100);
    expect(queue.request('hr', 'event:2').reload.id).not.toBe(first.reload.id);
    expect(queue.list({ state: 'queued' })).toHaveLength(2);
    expect(() => queue.request('nope', 'event:3')).toThrow(NotFoundError);
  });

  it('while one runs, queues exactly one more for the same app', () => {
    const a = queue.request('sales', 'event:1').reload;
    expect(
      store.db
        .transaction(() => queue.claim(5))()
        .map((r) => r.id),
    ).toEqual([a.id]);
    expect(queue.get(a.id)).toMatchObject({ state: 'running', attempts: 1 });
    const b = queue.request('sales', 'event:2');
    expect(b.coalesced).toBe(false);
    for (let i = 0; i < 50; i++) queue.request('sales', `user:${i}`);
    expect(queue.list({ appId: 'sales' }).map((r) => [r.state, r.requests])).toEqual([
      ['queued', 51],
      ['running', 1],
    ]);
  });

  it('claims oldest first up to the limit, and finishes only running reloads', () => {
    const a = queue.request('sales', 'x').reload;
    const b = queue.request('hr', 'y').reload;
    expect(queue.claim(1).map((r) => r.id)).toEqual([a.id]);
    expect(queue.finish(b.id, { state: 'succeeded' })).toBe(false); // still queued
    expect(queue.finish(a.id, { state: 'succeeded', rows: 10 })).toBe(true);
    expect(queue.finish(a.id, { state: 'failed' })).toBe(false); // already finished
    expect(queue.get(a.id)).toMatchObject({ state: 'succeeded', rows: 10, finishedAt: expect.any(String) });
  });

  it('cancels a queued reload at once and marks a running one for its executor', () => {
    const a = queue.request('sales', 'x').reload;
    queue.claim(1);
    const b = queue.request('sales', 'y').reload;
    const c = queue.cancel({ appId: 'sales' });
    expect(c.result).toBe('cancelling');
    expect(c.cancelled.map((r) => r.id)).toEqual([b.id]);
    expect(c.cancelling.map((r) => r.id)).toEqual([a.id]);
    expect(queue.get(a.id)).toMatchObject({ state: 'running', cancelRequested: true });
    expect(queue.get(b.id)).toMatchObject({ state: 'cancelled', errorCode: 'FORT_ERR_RELOAD_CANCELLED' });
    expect(queue.cancel({ reloadId: b.id }).result).toBe('finished');
    expect(queue.cancel({ reloadId: '00000000-0000-4000-8000-000000000000' }).result).toBe('not_found');
  });

  it('keeps the newest keepFinished finished reloads per app: the history is bounded, other apps untouched', () => {
    const small = createReloadQueue({ db: store.db, now: () => new Date((clock += 1000)), keepFinished: 3 });
    const run = (app: string, state: 'succeeded' | 'failed') => {
      const id = small.request(app, 'event').reload.id;
      expect(small.claim(10).map((r) => r.id)).toEqual([id]);
      expect(small.finish(id, state === 'failed' ? { state, errorCode: 'FORT_ERR_RELOAD_SOURCE' } : { state })).toBe(
        true,
      );
      return id;
    };
    const hr = run('hr', 'succeeded');
    const sales = Array.from({ length: 8 }, (_, i) => run('sales', i % 2 ? 'failed' : 'succeeded'));
    // A queued one is never pruned, whatever its age.
    const queued = small.request('sales', 'event').reload.id;
    expect(
      small
        .list({ appId: 'sales', limit: 100 })
        .map((r) => r.id)
        .sort(),
    ).toEqual([...sales.slice(-3), queued].sort());
    expect(small.list({ appId: 'hr' }).map((r) => r.id)).toEqual([hr]);
  });
});
