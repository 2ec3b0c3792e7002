import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
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

/**
 * Deletes the release directories under `<root>/releases` other than `keep` and what `current`
 * and `stable` point at (staging directories, `.`-named, are the unpacker's to clear).
 */
export function pruneReleases(root: string, keep: readonly (string | null | undefined)[]): void {
  const releases = join(root, 'releases');
  if (!existsSync(releases)) return;
  const kept = new Set([...keep, currentRelease(root), currentRelease(root, 'stable')]);
  for (const name of readdirSync(releases))
    if (!kept.has(name) && !name.startsWith('.')) rmSync(join(releases, name), { recursive: true, force: true });
}
