import { setTimeout as sleep } from 'node:timers/promises';
import { fullJitterDelay } from '../../lib/backoff.js';
import { FortError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { AppDefinition } from '../apps/definition.js';
import { resolveDataFile } from '../apps/confine.js';
import { openTableSource, type SourceOptions } from '../apps/connectors/index.js';
import type { EngineClient, EngineLoadTable } from './client.js';

/** A version the engine loaded: the agent keeps only its id and its tables' row counts. */
export interface EngineLoadedVersion {
  engineVersion: string;
  tables: { name: string; rows: number }[];
  rowCount: number;
}

/**
 * The definition's tables as the engine loads them: files resolved inside reloads.data_dirs; an
 * HTTP source fetched by the agent (the only one of the two with a network beyond loopback, its
 * proxy and its allowed hosts) and its rows streamed to the engine.
 */
export function engineLoadTables(def: AppDefinition, sources: SourceOptions): EngineLoadTable[] {
  const dataDirs = sources.dataDirs;
  return def.tables.map((t, i) => {
    switch (t.connector) {
      case 'csv':
        return {
          name: t.name,
          connector: 'csv',
          file: resolveDataFile(t.path, dataDirs, `tables[${i}].path`),
          delimiter: t.delimiter,
          quote: t.quote,
          header: true,
          columns: t.columns,
        };
      case 'sqlite':
        return {
          name: t.name,
          connector: 'sqlite',
          database: resolveDataFile(t.database, dataDirs, `tables[${i}].database`),
          query: t.query,
        };
      case 'http':
        return {
          name: t.name,
          connector: 'rows',
          columns: t.columns,
          batches: (signal) => {
            const source = openTableSource(t, sources);
            return source.batches ? source.batches(signal) : batchesOf(source.rows(signal));
          },
        };
    }
  });
}

async function* batchesOf(rows: AsyncIterable<unknown[]>): AsyncGenerator<unknown[][]> {
  for await (const row of rows) yield [row];
}

/**
 * Asks the engine to load a version, and again (a new version id, after a backoff) while the
 * engine cannot be reached: a killed engine is restarted by its unit, and the reload completes
 * once it is back, within the reload's own timeout (`signal`). A refusal by the engine (bad
 * source, too many rows) fails the reload at once.
 */
export async function loadInEngine(o: {
  engine: EngineClient;
  appId: string;
  /** Unique per start of a reload: the engine's versions are written once. */
  versionId: string;
  tables: EngineLoadTable[];
  timeoutMs: number;
  signal: AbortSignal;
  log: Logger;
}): Promise<EngineLoadedVersion> {
  for (let attempt = 0; ; attempt++) {
    const version = attempt === 0 ? o.versionId : `${o.versionId}-r${attempt}`;
    try {
      const done = await o.engine.load(o.appId, version, o.tables, o.timeoutMs, o.signal);
      return {
        engineVersion: done.version,
        tables: done.tables,
        rowCount: done.tables.reduce((n, t) => n + t.rows, 0),
      };
    } catch (err) {
      const linkDown = err instanceof FortError && err.code === 'FORT_ERR_ENGINE_UNAVAILABLE' && !o.signal.aborted;
      if (!linkDown) throw err;
      const delay = fullJitterDelay(attempt, { baseMs: 250, capMs: 5000, floorMs: 100 });
      o.log.warn({ appId: o.appId, err: err.message, retryInMs: delay }, 'fort-engine unreachable during a load');
      await sleep(delay, undefined, { signal: o.signal }).catch(() => undefined);
      if (o.signal.aborted) throw err;
    }
  }
}
