import { existsSync, mkdirSync, realpathSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { z } from 'zod';
import { FortError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { DUCKDB_TYPES, writeCsvVersion, type VersionLimits } from './load/csv-version.js';
import type { VersionStore } from './versions.js';

const column = z.strictObject({
  name: z.string().min(1).max(128),
  type: z.enum(Object.keys(DUCKDB_TYPES) as [keyof typeof DUCKDB_TYPES]),
});

/** What the agent asks the engine to load: a new version of an app from its sources (CSV for now). */
export const loadRequestSchema = z.strictObject({
  version: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/),
  tables: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/),
        connector: z.literal('csv'),
        file: z.string().min(1).max(4096),
        delimiter: z.string().length(1).default(','),
        quote: z.string().length(1).default('"'),
        header: z.boolean().default(true),
        columns: z.array(column).min(1).max(2000),
      }),
    )
    .min(1)
    .max(64),
});
export type LoadRequest = z.output<typeof loadRequestSchema>;

/** `file` resolved (links followed) inside one of `dirs`, or a refusal naming it. */
function confined(file: string, dirs: readonly string[]): string {
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    throw new FortError('FORT_ERR_RELOAD_SOURCE', `${file}: the file cannot be read`);
  }
  const inside = dirs.some((d) => {
    const rel = relative(realpathSync(d), real);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  });
  if (!inside) throw new FortError('FORT_ERR_RELOAD_SOURCE', `${file}: not inside the engine's data.source_dirs`);
  return real;
}

/** Loads run one at a time (each may use the whole memory_limit), each into a new immutable version. */
export function createVersionLoader(o: {
  versions: VersionStore;
  sourceDirs: readonly string[];
  limits: VersionLimits;
  log: Logger;
}) {
  let chain: Promise<unknown> = Promise.resolve();
  return {
    load(app: string, req: LoadRequest) {
      const run = async () => {
        // Versions are immutable: an id is written once.
        if (existsSync(o.versions.file(app, req.version)))
          throw new FortError('FORT_ERR_CONFLICT', `version ${req.version} of app ${app} exists already`);
        const tables = req.tables.map((t) => ({ ...t, file: confined(t.file, o.sourceDirs) }));
        const dir = o.versions.appDir(app);
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const started = Date.now();
        const v = await writeCsvVersion({ dir, id: req.version, tables, limits: o.limits });
        o.log.info({ app, version: req.version, tables: v.tables, ms: Date.now() - started }, 'app version loaded');
        return { app, version: req.version, tables: v.tables };
      };
      const result = chain.then(run, run);
      chain = result.catch(() => undefined);
      return result;
    },
  };
}
export type VersionLoader = ReturnType<typeof createVersionLoader>;
