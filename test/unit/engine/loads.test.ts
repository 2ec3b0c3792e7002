import { describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { createVersionLoader, loadRequestSchema } from '../../../engine/loads.js';
import { createVersionStore } from '../../../engine/versions.js';
import { fortFailure } from '../../helpers/assertions.js';
import { tempDir } from '../../helpers/fort.js';

/** The load queue: one load at a time, a cancelled one skipped or stopped, the others unaffected. */

function setup() {
  const dir = tempDir('engine-loads');
  const sources = join(dir, 'sources');
  mkdirSync(sources);
  writeFileSync(join(sources, 'a.csv'), 'x\n1\n2\n');
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'info' },
    { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
  );
  const versions = createVersionStore({ dir: join(dir, 'data'), memoryLimit: '128MB', threads: 1, maxOpen: 2, log });
  const loader = createVersionLoader({
    versions,
    sourceDirs: [sources],
    limits: { memoryLimit: '128MB', threads: 1, maxRows: 1000 },
    log,
  });
  const request = (version: string) =>
    loadRequestSchema.parse({
      version,
      tables: [
        { name: 't', connector: 'csv', file: join(sources, 'a.csv'), columns: [{ name: 'x', type: 'integer' }] },
      ],
    });
  return { dir, lines, loader, request, appDir: versions.appDir('app') };
}

describe('the engine load queue', () => {
  it('a load cancelled while it waits is skipped, and the loads around it run', async () => {
    const s = setup();
    const abort = new AbortController();
    const first = s.loader.load('app', s.request('v1'));
    const second = s.loader.load('app', s.request('v2'), abort.signal);
    const third = s.loader.load('app', s.request('v3'));
    abort.abort();
    const err = await fortFailure(second);
    expect(err.code).toBe('FORT_ERR_RELOAD_CANCELLED');
    expect(err.message).toBe('version v2: the load was cancelled');
    expect((await first).tables).toEqual([{ name: 't', rows: 2 }]);
    expect((await third).tables).toEqual([{ name: 't', rows: 2 }]);
    expect(readdirSync(s.appDir).sort()).toEqual(['v1.duckdb', 'v3.duckdb']);
    expect(s.lines.map((l) => `${String(l['msg'])} ${String(l['version'])}`)).toEqual([
      'load queued v2',
      'load queued v3',
      'load started v1',
      'app version loaded v1',
      'load cancelled v2',
      'load started v3',
      'app version loaded v3',
    ]);
  });

  it('table names of a version must differ (DuckDB names are case-insensitive); a SQLite database path is absolute', () => {
    const t = { connector: 'sqlite', database: '/data/a.sqlite', query: 'SELECT 1' };
    const twice = loadRequestSchema.safeParse({
      version: 'v',
      tables: [
        { ...t, name: 'Sales' },
        { ...t, name: 'sales' },
      ],
    });
    expect(twice.error?.issues.map((i) => i.message)).toEqual(['table names must differ']);
    const relative = loadRequestSchema.safeParse({ version: 'v', tables: [{ ...t, name: 's', database: 'a.sqlite' }] });
    expect(relative.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'tables.0.database: expected an absolute path',
    ]);
  });
});
