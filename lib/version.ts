import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ReleaseInfo {
  version: string;
  /** Directory of the release (holds package.json); `current` points at one of these. */
  root: string;
}

/** The running release, found from this file upward (works from `dist/` and from source). */
export function readReleaseInfo(from: string = fileURLToPath(import.meta.url)): ReleaseInfo {
  let dir = dirname(from);
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'fort' && pkg.version) return { version: pkg.version, root: dir };
    }
    const parent = dirname(dir);
    if (parent === dir) return { version: '0.0.0-unknown', root: dirname(from) };
    dir = parent;
  }
}
