import { randomBytes } from 'node:crypto';
import { readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fsyncDir } from '../../lib/files.js';

/** `<root>/current` → `releases/<version>`, the directory systemd runs the agent from. */
export function currentRelease(root: string): string | undefined {
  try {
    return basename(readlinkSync(join(root, 'current')));
  } catch {
    return undefined;
  }
}

/**
 * Points `current` at `releases/<version>` atomically: a new symlink under a temp name renamed
 * over the old one (rename(2) replaces it in one step), then the directory is fsynced so the
 * switch survives a power cut. A crash leaves `current` at the old or the new release.
 */
export function switchCurrent(root: string, version: string): void {
  const tmp = join(root, `.current-${randomBytes(6).toString('hex')}`);
  try {
    symlinkSync(join('releases', version), tmp);
    renameSync(tmp, join(root, 'current'));
  } finally {
    rmSync(tmp, { force: true });
  }
  fsyncDir(root);
}
