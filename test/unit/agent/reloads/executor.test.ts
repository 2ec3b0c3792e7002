import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { openStore, type Store } from '../../../../agent/store/database.js';
import { createReloadQueue, type ReloadQueue } from '../../../../agent/reloads/queue.js';
import { createReloadExecutor, type LoadedVersion, type ReloadExecutor } from '../../../../agent/reloads/executor.js';
import { recoverReloads } from '../../../../agent/reloads/recovery.js';
import type { ReloadStatusSink } from '../../../../agent/reloads/status.js';
import { createAppCatalog } from '../../../../agent/apps/catalog.js';
import { FortError } from '../../../../lib/errors.js';
import { reloadEnded, seedApp } from '../../../helpers/apps.js';
import { eventually, tempDir } from '../../../helpers/fort.js';

const log = pino({ level: 'silent' });

/** A version file with one table `t` holding `n` rows, as a loader leaves it (temp name, app dir). */
function writeTemp(appsDir: string, appId: string, n: number): LoadedVersion & { tmpFile: string } {
  const dir = join(appsDir, appId);
  mkdirSync(dir, { recursive: true });
  const tmpFile = join(dir, `.reload-${Math.random().toString(16).slice(2)}.sqlite.tmp`);
  const db = new Database(tmpFile);
  db.exec('CREATE TABLE t (n INTEGER)');
  const ins = db.prepare('INSERT INTO t VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < n; i++) ins.run(i);
  })();
  db.close();
  return { tmpFile, tables: [{ name: 't', rows: n }], rowCount: n, contentHash: `hash-${n}` };
}

/** A promise the test settles. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('reload executor', () => {
  let dir: string;
  let appsDir: string;
  let store: Store;
  let queue: ReloadQueue;
  let statuses: { type: string; data: Record<string, unknown> }[];
  let status: ReloadStatusSink;
  let executor: ReloadExecutor | undefined;

  beforeEach(() => {
    dir = tempDir('reload-exec');
    appsDir = join(dir, 'apps');
    store = openStore({ path: join(dir, 'agent.db'), log });
    for (const id of ['sales', 'hr']) seedApp(store.db, appsDir, { id, name: id, space: 's' });
    queue = createReloadQueue({ db: store.db });
    statuses = [];
    status = { emit: (type, data) => void statuses.push({ type, data }) };
  });
  afterEach(async () => {
    await executor?.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const make = (
    load: (appId: string, signal: AbortSignal) => Promise<LoadedVersion>,
    over: { concurrency?: number; timeoutMs?: number; keepVersions?: number } = {},
  ) => {
    executor = createReloadExecutor({
      db: store.db,
      queue,
      appsDir,
      load,
      status,
      concurrency: over.concurrency ?? 1,
      timeoutMs: over.timeoutMs ?? 10_000,
      keepVersions: over.keepVersions ?? 2,
      log,
    });
    executor.start();
    return executor;
  };
  const request = (appId: string) => {
    const r = queue.request(appId, 'test');
    executor?.kick();
    return r.reload.id;
  };
  const settled = (id: string) => reloadEnded(queue, id, 5000);

  it("loads, switches the current version with the reload's end, reports started and succeeded", async () => {
    make(async (appId) => writeTemp(appsDir, appId, 42));
    const id = request('sales');
    const done = await settled(id);
    expect(done).toMatchObject({ state: 'succeeded', rows: 42, attempts: 1 });
    const catalog = createAppCatalog({ db: store.db, appsDir });
    const file = catalog.currentVersionFile('sales')!;
    expect(file).toBe(join(appsDir, 'sales', `${done.versionId}.sqlite`));
    expect(new Database(file, { readonly: true }).prepare('SELECT COUNT(*) FROM t').pluck().get()).toBe(42);
    expect(statuses.map((s) => s.type)).toEqual(['reload.started', 'reload.succeeded']);
    expect(statuses[1]!.data).toMatchObject({
      reloadId: id,
      appId: 'sales',
      versionId: done.versionId,
      rows: 42,
      tables: [{ name: 't', rows: 42 }],
    });
    expect(readdirSync(join(appsDir, 'sales')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('a failed load leaves the current version untouched and reports the code and message', async () => {
    let n = 0;
    make(async (appId) => {
      if (++n === 2)
        throw new FortError('FORT_ERR_RELOAD_SOURCE', 'table orders, row 3, column amount: expected a number', {
          fatal: false,
        });
      return writeTemp(appsDir, appId, 5);
    });
    const first = await settled(request('sales'));
    const failed = await settled(request('sales'));
    expect(failed).toMatchObject({
      state: 'failed',
      errorCode: 'FORT_ERR_RELOAD_SOURCE',
      errorMessage: 'table orders, row 3, column amount: expected a number',
    });
    expect(createAppCatalog({ db: store.db, appsDir }).get('sales')?.versionId).toBe(first.versionId);
    expect(statuses.at(-1)).toMatchObject({
      type: 'reload.failed',
      data: { code: 'FORT_ERR_RELOAD_SOURCE', appId: 'sales' },
    });
  });

  it("never reports an unexpected error's message (it may quote data); says internal instead", async () => {
    make(async () => {
      throw new Error('secret customer value SECRETVALUE broke it');
    });
    const failed = await settled(request('sales'));
    expect(failed).toMatchObject({ state: 'failed', errorCode: 'FORT_ERR_INTERNAL' });
    expect(JSON.stringify(statuses)).not.toContain('SECRETVALUE');
  });

  it('runs at most `concurrency` loads at once', async () => {
    const gates: ReturnType<typeof deferred<void>>[] = [];
    let active = 0;
    let peak = 0;
    make(
      async (appId) => {
        active++;
        peak = Math.max(peak, active);
        const g = deferred<void>();
        gates.push(g);
        await g.promise;
        active--;
        return writeTemp(appsDir, appId, 1);
      },
      { concurrency: 1 },
    );
    const a = request('sales');
    const b = request('hr');
    await eventually(() => (gates.length === 1 ? true : undefined), 5000, 'the first load');
    expect(queue.get(b)?.state).toBe('queued');
    gates[0]!.resolve();
    await eventually(() => (gates.length === 2 ? true : undefined), 5000, 'the second load');
    gates[1]!.resolve();
    await settled(a);
    await settled(b);
    expect(peak).toBe(1);
  });

  it('cancels a running load through its signal, and times out a load that takes too long', async () => {
    make(
      (_appId, signal) => new Promise((_res, rej) => signal.addEventListener('abort', () => rej(new Error('aborted')))),
      { timeoutMs: 200, concurrency: 2 },
    );
    const a = request('sales');
    await eventually(() => (queue.get(a)?.state === 'running' ? true : undefined), 5000, 'running');
    store.db.transaction(() => queue.cancel({ reloadId: a }))();
    executor!.abortIfRunning(a);
    expect(await settled(a)).toMatchObject({ state: 'cancelled', errorCode: 'FORT_ERR_RELOAD_CANCELLED' });
    const b = request('hr');
    expect(await settled(b)).toMatchObject({ state: 'failed', errorCode: 'FORT_ERR_RELOAD_TIMEOUT' });
    expect(statuses.map((s) => s.type)).toEqual(expect.arrayContaining(['reload.cancelled', 'reload.failed']));
  });

  it('keeps the newest versions only', async () => {
    make(async (appId) => writeTemp(appsDir, appId, 3), { keepVersions: 2 });
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) ids.push((await settled(request('sales'))).versionId!);
    const files = readdirSync(join(appsDir, 'sales')).sort();
    expect(files).toEqual(
      ids
        .slice(-2)
        .map((v) => `${v}.sqlite`)
        .sort(),
    );
    expect(store.db.prepare("SELECT id FROM app_versions WHERE app_id = 'sales' ORDER BY id").pluck().all()).toEqual(
      ids.slice(-2),
    );
  });

  it('a stop leaves the running reload running; recovery re-queues it, removes orphans, gives up after max attempts', async () => {
    const started = deferred<void>();
    make(async (_appId, signal) => {
      started.resolve();
      await new Promise((_r, rej) => signal.addEventListener('abort', () => rej(new Error('aborted'))));
      throw new Error('unreachable');
    });
    const id = request('sales');
    await started.promise;
    await executor!.stop();
    executor = undefined;
    expect(queue.get(id)?.state).toBe('running');
    // What a kill -9 mid-load leaves: a temp file, and a version renamed into place whose row never committed.
    writeTemp(appsDir, 'sales', 1);
    const orphan = writeTemp(appsDir, 'sales', 1);
    const orphanFinal = join(appsDir, 'sales', '999.sqlite');
    rmSync(orphanFinal, { force: true });
    renameSync(orphan.tmpFile, orphanFinal);
    const rec = recoverReloads({ db: store.db, queue, appsDir, maxAttempts: 2, status, log });
    expect(rec).toMatchObject({ requeued: 1, givenUp: 0 });
    expect(rec.orphanFilesRemoved).toHaveLength(2);
    expect(existsSync(orphanFinal)).toBe(false);
    expect(queue.get(id)).toMatchObject({ state: 'queued', attempts: 1 });
    // Second interruption: attempts reach the limit and the reload is given up, with a status.
    store.db.transaction(() => queue.claim(1))();
    const again = recoverReloads({ db: store.db, queue, appsDir, maxAttempts: 2, status, log });
    expect(again).toMatchObject({ requeued: 0, givenUp: 1 });
    expect(queue.get(id)).toMatchObject({ state: 'failed', errorCode: 'FORT_ERR_RELOAD_ATTEMPTS' });
    expect(statuses.at(-1)).toMatchObject({
      type: 'reload.failed',
      data: { reloadId: id, code: 'FORT_ERR_RELOAD_ATTEMPTS' },
    });
  });
});
