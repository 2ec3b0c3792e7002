import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * At start: what loads a crash (kill -9, power cut) interrupted left in `<dataDir>/apps/<app>/`:
 * `<id>.duckdb.partial` and its WAL and temp directory. No version id points at them (a version
 * exists only once renamed), so they are removed; the agent asks again under a new id.
 */
export function removeInterruptedLoads(dataDir: string): string[] {
  const apps = join(dataDir, 'apps');
  let names: string[];
  try {
    names = readdirSync(apps);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const app of names) {
    let entries;
    try {
      entries = readdirSync(join(apps, app));
    } catch {
      continue;
    }
    for (const e of entries)
      if (/\.duckdb\.partial(\.wal|\.tmp)?$/.test(e)) {
        rmSync(join(apps, app, e), { recursive: true, force: true });
        removed.push(`${app}/${e}`);
      }
  }
  return removed;
}
