import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { openStore, type Store } from '../../../../agent/store/database.js';
import { reloadsSection } from '../../../../agent/reloads/config.js';
import { startReloadService, type ReloadService } from '../../../../agent/reloads/service.js';
import { createAppCatalog } from '../../../../agent/apps/catalog.js';
import type { EngineClient, EngineLoadTable } from '../../../../agent/engine/client.js';
import { tempDir } from '../../../helpers/fort.js';
import { reloadEnded } from '../../../helpers/apps.js';

/**
 * With fort-engine configured every app loads there: a file by its path (the engine reads it), an
 * HTTP source as rows the agent fetches itself (the engine has no network beyond loopback) and
 * streams. The engine is stood in: what it is asked, and that streamed rows come from the agent's
 * own fetch (engine/load/rows-table.ts and its test take the stream from there).
 */

const log = pino({ level: 'silent' });
let store: Store | undefined;
let service: ReloadService | undefined;
afterEach(async () => {
  await service?.stop();
  store?.close();
  service = store = undefined;
});

describe('reloads with fort-engine configured', () => {
  it('asks the engine to load a CSV app by path, and an HTTP app as rows the agent fetches', async () => {
    const dir = tempDir('reloads-engine');
    writeFileSync(join(dir, 'orders.csv'), 'id\n1\n2\n3\n');
    store = openStore({ path: join(dir, 'agent.db'), log });
    const asked: { app: string; version: string; tables: unknown[] }[] = [];
    const engine = {
      load: async (app: string, version: string, tables: EngineLoadTable[], _ms: number, signal: AbortSignal) => {
        asked.push({ app, version, tables });
        // As the client does while it streams: the agent's fetch runs, and its failure is the load's.
        for (const t of tables) if (t.connector === 'rows') for await (const _ of t.batches(signal));
        return { version, tables: [{ name: 'orders', rows: 3 }] };
      },
      versions: async () => [],
      deleteVersion: async () => {},
    } as unknown as EngineClient;
    service = startReloadService({
      db: store.db,
      config: reloadsSection().parse({ data_dirs: [dir], http_allowed_hosts: ['127.0.0.1'] }),
      appsDir: join(dir, 'apps'),
      fortId: 'fort-test-1',
      log,
      engine,
    });
    const columns = 'columns = [ { name = "id", type = "integer" } ]';
    await service.registry.register(
      `id = "files"\nname = "files"\nspace = "s"\n[[tables]]\nname = "orders"\nconnector = "csv"\npath = "orders.csv"\n${columns}\n`,
      'toml',
      'test',
    );
    // Port 1 on loopback: nothing listens, so the agent's own fetch fails at once, telling who tried.
    await service.registry.register(
      `id = "web"\nname = "web"\nspace = "s"\n[[tables]]\nname = "rates"\nconnector = "http"\nurl = "https://127.0.0.1:1/rates.csv"\n${columns}\n`,
      'toml',
      'test',
    );
    service.start();
    const files = service.request('files', 'test').reload.id;
    const web = service.request('web', 'test').reload.id;
    const done = (id: string) => reloadEnded(service!.queue, id);
    expect(await done(files)).toMatchObject({ state: 'succeeded', rows: 3 });
    const failed = await done(web);
    expect(failed).toMatchObject({ state: 'failed', errorCode: 'FORT_ERR_RELOAD_SOURCE' });
    expect(failed.errorMessage).toMatch(/127\.0\.0\.1:1/);
    expect(asked).toEqual([
      {
        app: 'files',
        version: `${files}-1`,
        tables: [expect.objectContaining({ name: 'orders', connector: 'csv', file: join(dir, 'orders.csv') })],
      },
      {
        app: 'web',
        version: `${web}-1`,
        tables: [
          {
            name: 'rates',
            connector: 'rows',
            columns: [{ name: 'id', type: 'integer' }],
            batches: expect.any(Function),
          },
        ],
      },
    ]);
    // The engine's version is what the app serves.
    expect(createAppCatalog({ db: store.db, appsDir: join(dir, 'apps') }).currentEngineVersion('files')).toEqual({
      version: `${files}-1`,
      tables: [{ name: 'orders', rows: 3 }],
    });
  });
});
