import { randomBytes } from 'node:crypto';
import { readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fsyncDir } from '../../lib/files.js';

/**
 * The links of an install root: `current` (what systemd runs) and, for the deployment manager's
 * own releases, `stable` (the last release that proved itself; root's self-update program runs it).
 */
export type ReleaseLink = 'current' | 'stable';

/** `<root>/<link>` → `releases/<version>`: the version it points at. */
export function currentRelease(root: string, link: ReleaseLink = 'current'): string | undefined {
  try {
    return basename(readlinkSync(join(root, link)));
  } catch {
    return undefined;
  }
}

/**
 * Points `<root>/<link>` at `releases/<version>` atomically: a new symlink under a temp name
 * renamed over the old one (rename(2) replaces it in one step), then the directory is fsynced so
 * the switch survives a power cut. A crash leaves the link at the old or the new release.
 */
export function switchCurrent(root: string, version: string, link: ReleaseLink = 'current'): void {
  const tmp = join(root, `.${link}-${randomBytes(6).toString('hex')}`);
  try {
    symlinkSync(join('releases', version), tmp);
    renameSync(tmp, join(root, link));
  } finally {
    rmSync(tmp, { force: true });
  }
  fsyncDir(root);
}
