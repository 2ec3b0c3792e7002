import { setTimeout as sleep } from 'node:timers/promises';
import { fullJitterDelay } from '../../lib/backoff.js';
import { FortError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { AppDefinition } from '../apps/definition.js';
import { resolveDataFile } from '../apps/confine.js';
import type { EngineClient, EngineLoadTable } from './client.js';

/** A version the engine loaded: the agent keeps only its id and its tables' row counts. */
export interface EngineLoadedVersion {
  engineVersion: string;
  tables: { name: string; rows: number }[];
  rowCount: number;
}

/** The definition's tables as the engine loads them: files resolved inside reloads.data_dirs. */
export function engineLoadTables(def: AppDefinition, dataDirs: string[]): EngineLoadTable[] {
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
        // The reload service loads apps with HTTP sources in the agent; never asked here.
        throw new FortError('FORT_ERR_RELOAD_SOURCE', `tables[${i}]: fort-engine does not fetch http sources`);
    }
  });
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
