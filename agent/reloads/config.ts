import { z } from 'zod';
import { resolveFrom } from '../../lib/config/load.js';
import { host, intRange, nonEmpty } from '../../lib/config/fields.js';

/** `[reloads]` of agent.toml: where app data may come from and how reloads run. */
export const reloadsSection = () =>
  z
    .strictObject({
      data_dirs: z
        .array(nonEmpty('a directory path'))
        .default([])
        .describe(
          'Directories csv and sqlite sources may read from (resolved, symlinks followed); nothing outside them is ever opened',
        ),
      http_allowed_hosts: z
        .array(host())
        .default([])
        .describe('Hosts (exact names or IPs) http sources may fetch from; empty = no http sources'),
      concurrency: intRange(1, 16).default(1).describe('Reloads running at the same time'),
      timeout_seconds: intRange(1, 86_400)
        .default(600)
        .describe('A reload running longer is stopped and fails with FORT_ERR_RELOAD_TIMEOUT'),
      keep_versions: intRange(2, 100)
        .default(3)
        .describe('Versions kept per app (the current one included); older files are deleted'),
      max_attempts: intRange(1, 10)
        .default(3)
        .describe('Starts of one reload, counting restarts after a crash, before it is given up'),
      max_rows: intRange(1, 2_000_000_000)
        .default(50_000_000)
        .describe('Rows of one app version at most (all tables); more fails the reload'),
    })
    .default({
      data_dirs: [],
      http_allowed_hosts: [],
      concurrency: 1,
      timeout_seconds: 600,
      keep_versions: 3,
      max_attempts: 3,
      max_rows: 50_000_000,
    });

export type ReloadsConfig = z.output<ReturnType<typeof reloadsSection>>;

export function resolveReloadsPaths(dir: string, c: ReloadsConfig): ReloadsConfig {
  return { ...c, data_dirs: c.data_dirs.map((d) => resolveFrom(dir, d)) };
}
