import { mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../lib/files.js';
import type { PkiPaths } from '../../lib/pki/layout.js';
import {
  agentToml,
  deploymentManagerToml,
  engineToml,
  reserveStackPorts,
  type StackLayout,
} from '../../scripts/dev-config.js';

/**
 * One fort installation for a bench run: config files on loopback ports reserved for the rest of
 * the run (scripts/port-reservation.ts; a dozen installations at most, released as the run exits)
 * and a fresh data dir (so every agent start creates and migrates a new DB), sharing the run's PKI.
 */
export async function installation(
  tmp: string,
  pki: PkiPaths,
  healthIntervalSeconds = 1,
  iot = false,
  cloudAuth = false,
  engine = false,
) {
  const dir = mkdtempSync(join(tmp, 'inst-'));
  // Production log level: debug logging would bench the logger, not the service.
  const layout: StackLayout = {
    dir,
    // The device certificate's CN is the PKI's fort id; the credentials provider checks it.
    fortId: 'fort-dev-1',
    pki,
    ports: (await reserveStackPorts()).ports,
    dataDir: join(dir, 'data'),
    sourcesDir: join(dir, 'sources'),
    logLevel: 'info',
    ...(cloudAuth ? { cloudAuth: { tenant: 't1' } } : {}),
    ...(iot
      ? {
          iot: { region: 'eu-west-1', roleAlias: 'fort-iot-role', staticCredentialsFile: join(dir, 'iot-static.json') },
        }
      : {}),
    // Benchmarks measure the engine computing, not its cache.
    ...(engine ? { engine: { dataDir: join(dir, 'data', 'engine'), cacheMib: 0 } } : {}),
  };
  mkdirSync(layout.sourcesDir!, { recursive: true });
  const files = {
    agent: join(dir, 'agent.toml'),
    dm: join(dir, 'deployment-manager.toml'),
    engine: join(dir, 'engine.toml'),
  };
  writeFileAtomic(files.agent, agentToml(layout), 0o644);
  if (layout.engine) writeFileAtomic(files.engine, engineToml({ ...layout, engine: layout.engine }), 0o644);
  writeFileAtomic(files.dm, deploymentManagerToml(layout, healthIntervalSeconds), 0o644);
  return { dir, layout, files };
}
export type Installation = Awaited<ReturnType<typeof installation>>;
