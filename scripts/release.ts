#!/usr/bin/env node
import { Command } from 'commander';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProductManifest } from './bundle.js';

/**
 * `npm run release -- --version 1.2.3 --device-type <t> [--key signing.pem] [--out dir]`:
 * the agent release tarball and a Mender module-image artifact of it, written and signed by the
 * real `mender-artifact` tool. The tarball holds the product and nothing dev-only: the bundles
 * `npm run build` makes (the daemons, fortctl, the deployment manager's CLI, the PKI generator;
 * dist/product.json lists their files), dist/build-info.json, the installer and the units, a
 * package.json naming only the packages the bundles load, and those packages' production
 * `node_modules` with the built native addons. `--no-node-modules` leaves node_modules out
 * (tests, where the release directory's parent provides them).
 */
export interface ReleaseOptions {
  version: string;
  deviceType: string;
  key?: string;
  out: string;
  nodeModules: boolean;
  /** The built tree (the repository root holding dist/ and package.json). */
  repo: string;
}

export function buildRelease(o: ReleaseOptions): { tarball: string; artifact: string; artifactName: string } {
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(o.version))
    throw new Error(`--version: expected a semantic version like 1.2.3, got ${JSON.stringify(o.version)}`);
  const productFile = join(o.repo, 'dist', 'product.json');
  if (!existsSync(productFile)) throw new Error(`${o.repo}/dist is not built (npm run build)`);
  const product = JSON.parse(readFileSync(productFile, 'utf8')) as ProductManifest;
  mkdirSync(o.out, { recursive: true });
  const staging = mkdtempSync(join(tmpdir(), 'fort-release-'));
  try {
    writeFileSync(
      join(staging, 'package.json'),
      `${JSON.stringify(releasePackageJson(JSON.parse(readFileSync(join(o.repo, 'package.json'), 'utf8')) as PackageJson, o.version, product.packages), null, 2)}\n`,
    );
    for (const f of ['build-info.json', ...product.files]) cpSync(join(o.repo, 'dist', f), join(staging, 'dist', f));
    // The installer and the units travel with the release: unpack it, run scripts/install.sh.
    cpSync(join(o.repo, 'systemd'), join(staging, 'systemd'), { recursive: true });
    cpSync(join(o.repo, 'scripts', 'install.sh'), join(staging, 'scripts', 'install.sh'));
    if (o.nodeModules) {
      cpSync(join(o.repo, 'package-lock.json'), join(staging, 'package-lock.json'));
      cpSync(join(o.repo, 'node_modules'), join(staging, 'node_modules'), { recursive: true, verbatimSymlinks: true });
      // What the release's package.json names and their dependencies; the native addons are
      // already built for this machine.
      execFileSync('npm', ['prune', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], {
        cwd: staging,
        stdio: 'ignore',
      });
      trimNodeModules(join(staging, 'node_modules'));
    }
    return packRelease(staging, o);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * What npm prune leaves behind that nothing loads: the scope directories it emptied, and what
 * node-gyp built the native addons from (object files, static libraries, makefiles; about half
 * of the compressed release). A native addon's `build/` keeps only its `Release/*.node`.
 */
function trimNodeModules(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    const path = join(dir, e.name);
    if (e.name.startsWith('@')) {
      trimNodeModules(path);
      if (readdirSync(path).length === 0) rmSync(path, { recursive: true });
      continue;
    }
    const build = join(path, 'build');
    if (existsSync(join(build, 'config.gypi')) && existsSync(join(build, 'Release'))) {
      for (const f of readdirSync(build)) if (f !== 'Release') rmSync(join(build, f), { recursive: true });
      for (const f of readdirSync(join(build, 'Release')))
        if (!f.endsWith('.node')) rmSync(join(build, 'Release', f), { recursive: true });
    }
    if (existsSync(join(path, 'node_modules'))) trimNodeModules(join(path, 'node_modules'));
  }
}

interface PackageJson {
  name: string;
  description?: string;
  type?: string;
  engines?: Record<string, string>;
  bin?: Record<string, string>;
  dependencies?: Record<string, string>;
}

/** The repository's package.json as a release's: its version, only the packages the bundles load, no scripts. */
function releasePackageJson(
  pkg: PackageJson,
  version: string,
  packages: string[],
): PackageJson & { version: string; private: true } {
  const dependencies = Object.fromEntries(
    packages.map((p) => {
      const range = pkg.dependencies?.[p];
      if (!range) throw new Error(`the bundles load ${p}, which package.json does not list in dependencies`);
      return [p, range];
    }),
  );
  return {
    name: pkg.name,
    version,
    private: true,
    description: pkg.description,
    type: pkg.type,
    engines: pkg.engines,
    bin: pkg.bin,
    dependencies,
  };
}

/**
 * A release directory (`package.json` of `version`, `dist/`, …) as the tarball and its Mender
 * artifact, signed when `key` is given. The tarball's files are root's, as on any host.
 */
export function packRelease(
  staging: string,
  o: { version: string; deviceType: string; key?: string | undefined; out: string },
): { tarball: string; artifact: string; artifactName: string } {
  mkdirSync(o.out, { recursive: true });
  const tarball = join(o.out, `fort-agent-${o.version}.tgz`);
  const owner = ['--owner=0', '--group=0', '--numeric-owner'];
  execFileSync('tar', ['-czf', tarball, '-C', staging, ...owner, '.']);
  // The artifact carries a plain tar: its data/0000.tar.gz compresses it once, and the deployment
  // manager unpacks it with one inflate instead of two (issue 19: a third of an install's CPU).
  const plain = join(o.out, `fort-agent-${o.version}.tar`);
  execFileSync('tar', ['-cf', plain, '-C', staging, ...owner, '.']);
  const artifactName = `fort-${o.version}`;
  const artifact = join(o.out, `${artifactName}.mender`);
  rmSync(artifact, { force: true });
  try {
    execFileSync(
      'mender-artifact',
      [
        'write',
        'module-image',
        '-T',
        'fort-agent',
        '-n',
        artifactName,
        '-t',
        o.deviceType,
        '-f',
        plain,
        '-o',
        artifact,
        '--compression',
        'gzip',
      ],
      { stdio: 'pipe' },
    );
  } finally {
    rmSync(plain);
  }
  if (o.key) execFileSync('mender-artifact', ['sign', '-k', o.key, artifact], { stdio: 'pipe' });
  return { tarball, artifact, artifactName };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const o = new Command('release')
    .requiredOption('--version <semver>', 'release version (package.json of the release)')
    .requiredOption('--device-type <type>', 'Mender device type the artifact is for')
    .option('--key <pem>', 'signing key: PKCS#1 RSA or SEC1 EC private key (mender-artifact refuses PKCS#8)')
    .option('--out <dir>', 'output directory', 'release')
    .option('--no-node-modules', 'leave node_modules out of the tarball')
    .parse(process.argv)
    .opts<{ version: string; deviceType: string; key?: string; out: string; nodeModules: boolean }>();
  try {
    const r = buildRelease({ ...o, repo: resolve(dirname(fileURLToPath(import.meta.url)), '..', '..') });
    process.stdout.write(
      `release ${o.version}: ${r.tarball}\nartifact ${r.artifactName}: ${r.artifact}${o.key ? ' (signed)' : ' (unsigned)'}\n`,
    );
  } catch (err) {
    process.stderr.write(`release: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
