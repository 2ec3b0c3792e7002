import { z } from 'zod';
import { filePath, host, intRange, lifecycleSection, logSection, port, tlsFiles } from '../lib/config/fields.js';
import { loadTomlConfig, resolveFrom, resolveTlsFrom } from '../lib/config/load.js';

/** fort-engine's configuration (engine.toml): where it listens in the trust zone, its data, its limits. */
export const engineConfigSchema = z.strictObject({
  server: z
    .strictObject({
      host: host().default('127.0.0.1').describe('Trust-zone address the engine listens on (never the client zone)'),
      port: port().describe('Its port'),
      tls: tlsFiles().describe(
        'ca = the trust-zone root CA (the only one callers may chain to); cert/key = the engine',
      ),
      allowed_clients: z
        .array(z.string().min(1))
        .min(1)
        .default(['agent'])
        .describe('Trust-zone members (certificate common names) that may call the engine'),
    })
    .describe('The trust-zone mTLS server'),
  data: z
    .strictObject({
      dir: filePath().describe('App versions: <dir>/apps/<app>/<version>.duckdb (immutable once written)'),
      source_dirs: z
        .array(filePath())
        .default([])
        .describe('Directories loads may read source files from (anything else is refused)'),
    })
    .describe('App data'),
  queries: z
    .strictObject({
      timeout_ms: intRange(10, 600_000).default(10_000).describe('A query running longer is interrupted (503)'),
      max_answer_bytes: intRange(1024, 256 * 1024 * 1024)
        .default(8 * 1024 * 1024)
        .describe('Bytes of one answer (rows as JSON); past it the query is refused (422)'),
      memory_limit: z
        .string()
        .regex(/^\d+(KB|MB|GB)$/, 'expected e.g. 512MB')
        .default('512MB')
        .describe("DuckDB's memory_limit for each open version and load"),
      threads: intRange(1, 64).default(2).describe("DuckDB's threads per open version and load"),
      open_versions: intRange(1, 256)
        .default(8)
        .describe('App versions kept open at once (least recently used closed first)'),
      max_concurrent: intRange(1, 256).default(8).describe('Queries running at once; more wait'),
      max_groups: intRange(1, 100_000_000)
        .default(1_000_000)
        .describe('Groups one query may produce (all pages); more are refused (422) naming the limit'),
      cache_mib: intRange(0, 4096)
        .default(64)
        .describe('Answers kept per (version, table, query) in memory (versions never change); 0 = no cache'),
    })
    .default({
      timeout_ms: 10_000,
      max_answer_bytes: 8 * 1024 * 1024,
      memory_limit: '512MB',
      threads: 2,
      open_versions: 8,
      max_concurrent: 8,
      max_groups: 1_000_000,
      cache_mib: 64,
    }),
  loads: z
    .strictObject({
      max_rows: intRange(1, 2_000_000_000).default(50_000_000).describe('Rows of one table of a version'),
    })
    .default({ max_rows: 50_000_000 }),
  log: logSection(),
  lifecycle: lifecycleSection(),
});

export type EngineConfig = z.output<typeof engineConfigSchema>;

export function loadEngineConfig(file: string): EngineConfig {
  const { dir, config } = loadTomlConfig(file, engineConfigSchema);
  return {
    ...config,
    server: { ...config.server, tls: resolveTlsFrom(dir, config.server.tls) },
    data: {
      dir: resolveFrom(dir, config.data.dir),
      source_dirs: config.data.source_dirs.map((d) => resolveFrom(dir, d)),
    },
  };
}
