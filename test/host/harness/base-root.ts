import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What the booted root holds: enough for systemd, the units' sandbox, install.sh and fortctl. */
const PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'openssl',
  'ca-certificates',
  'procps',
  'iproute2',
  'passwd',
  'login',
];
const SUITE = 'bookworm';
/** Bumped when what goes into the root changes, so an old cache is not reused. */
const ROOT_REVISION = 1;

export class HostTestPrerequisiteError extends Error {}

/** Fails with the exact command that fixes it, as `pretest` does for packages. */
export function checkPrerequisites(): void {
  if (process.getuid?.() !== 0)
    throw new HostTestPrerequisiteError(
      'host tests boot a real systemd in its own namespaces and need root; run: sudo npm run test:host',
    );
  const missing = ['debootstrap', 'unshare', 'nsenter', 'chroot'].filter(
    (c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0,
  );
  if (missing.length > 0) {
    const pkgs = [
      ...new Set(
        missing.map((c) => (c === 'debootstrap' ? 'debootstrap' : c === 'chroot' ? 'coreutils' : 'util-linux')),
      ),
    ];
    throw new HostTestPrerequisiteError(
      `host tests need ${missing.join(', ')}; run: sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends ${pkgs.join(' ')}'`,
    );
  }
}

/** The first `deb.debian.org`-like mirror of the machine's apt sources (Debian's packages are reachable; nothing else is). */
export function aptMirror(): string {
  const files = [
    '/etc/apt/sources.list',
    ...listDir('/etc/apt/sources.list.d').map((f) => join('/etc/apt/sources.list.d', f)),
  ];
  for (const f of files) {
    const text = existsSync(f) ? readFileSync(f, 'utf8') : '';
    // deb822 (`URIs: …` with `Suites: bookworm`) or one-line (`deb URI bookworm main`).
    for (const block of text.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(block)?.[1];
      if (
        uri &&
        new RegExp(`^Suites:.*\\b${SUITE}\\b`, 'm').test(block) &&
        /^Components:.*\bmain\b/m.test(block) &&
        !uri.includes('security')
      )
        return uri;
    }
    const line = new RegExp(`^deb\\s+(?:\\[[^\\]]*\\]\\s+)?(\\S+)\\s+${SUITE}\\s+.*\\bmain\\b`, 'm').exec(text);
    if (line?.[1]) return line[1];
  }
  return 'http://deb.debian.org/debian';
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * A Debian `minbase` root with systemd, made once by debootstrap (about a minute) and cached
 * under `cacheDir`; later runs copy it. Built under a name of this process and renamed, so an
 * interrupted build is never taken for a root, and two runs building at once both end with one.
 */
export function ensureBaseRoot(cacheDir: string, log: (line: string) => void = () => {}): string {
  checkPrerequisites();
  const root = join(cacheDir, `${SUITE}-r${ROOT_REVISION}`);
  if (existsSync(join(root, '.complete'))) return root;
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  const building = `${root}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  const mirror = aptMirror();
  log(`host tests: debootstrap ${SUITE} from ${mirror} into ${building} (once; cached in ${cacheDir})`);
  const r = spawnSync(
    'debootstrap',
    ['--variant=minbase', `--include=${PACKAGES.join(',')}`, SUITE, building, mirror],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.status !== 0) {
    rmSync(building, { recursive: true, force: true });
    throw new Error(`debootstrap failed (exit ${r.status}): ${(r.stderr || r.stdout).slice(-2000)}`);
  }
  writeFileSync(join(building, '.complete'), `${new Date().toISOString()}\n`);
  try {
    rmSync(root, { recursive: true, force: true });
    renameSync(building, root);
  } catch (err) {
    // Another run renamed its copy first: use that one.
    rmSync(building, { recursive: true, force: true });
    if (!existsSync(join(root, '.complete'))) throw err;
  }
  return root;
}
