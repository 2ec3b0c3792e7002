import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRelease, packRelease } from '../../../scripts/release.js';
import { REPO } from '../../helpers/fort.js';

/** install.sh's default Mender device type: the host tests install with the defaults. */
export const DEVICE_TYPE = 'fort';

export interface HostRelease {
  version: string;
  tarball: string;
  artifact: string;
  artifactName: string;
}

/** `npm run release` of this checkout, with its production node_modules (a host has no other). */
export function buildHostRelease(o: { version: string; deviceType: string; key: string; out: string }): HostRelease {
  return { version: o.version, ...buildRelease({ ...o, nodeModules: true, repo: REPO }) };
}

/**
 * Another version of a built release, changed by `edit` (e.g. an agent that exits at start),
 * packed and signed exactly as `npm run release` packs them, without copying node_modules again.
 */
export function repackRelease(
  from: HostRelease,
  o: { version: string; deviceType: string; key: string; out: string; edit?: (dir: string) => void },
): HostRelease {
  const dir = mkdtempSync(join(tmpdir(), 'fort-repack-'));
  try {
    execFileSync('tar', ['-xzf', from.tarball, '-C', dir]);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ ...pkg, version: o.version }, null, 2)}\n`);
    o.edit?.(dir);
    return { version: o.version, ...packRelease(dir, o) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
