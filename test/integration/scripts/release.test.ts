import { describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { createReadStream, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { unpackRelease } from '../../../deployment-manager/install/unpack.js';
import { buildRelease } from '../../../scripts/release.js';
import { DIST, REPO, tempDir } from '../../helpers/fort.js';

const run = promisify(execFile);

describe('npm run release', () => {
  it('builds the agent release tarball and a Mender artifact the real tool validates with the signing key', async () => {
    const dir = tempDir('release');
    execFileSync('openssl', ['genrsa', '-traditional', '-out', join(dir, 'k.pem'), '2048'], { stdio: 'ignore' });
    execFileSync('openssl', ['rsa', '-in', join(dir, 'k.pem'), '-pubout', '-out', join(dir, 'pub.pem')], {
      stdio: 'ignore',
    });
    const { stdout } = await run(process.execPath, [
      join(DIST, 'scripts/release.js'),
      '--version',
      '1.0.1',
      '--device-type',
      'fort-test',
      '--key',
      join(dir, 'k.pem'),
      '--out',
      join(dir, 'out'),
      '--no-node-modules',
    ]);
    expect(stdout).toBe(
      `release 1.0.1: ${join(dir, 'out', 'fort-agent-1.0.1.tgz')}\nartifact fort-1.0.1: ${join(dir, 'out', 'fort-1.0.1.mender')} (signed)\n`,
    );
    const artifact = join(dir, 'out', 'fort-1.0.1.mender');
    expect((await run('mender-artifact', ['validate', '-k', join(dir, 'pub.pem'), artifact])).stdout).toContain(
      'validated successfully',
    );
    const read = (await run('mender-artifact', ['read', artifact])).stdout;
    expect(read).toMatch(/Name: fort-1\.0\.1/);
    expect(read).toContain("Compatible devices: '[fort-test]'");
    expect(read).toMatch(/Type: +fort-agent/);
    // The tarball is a release the deployment manager unpacks as 1.0.1.
    const unpacked = await unpackRelease(
      createReadStream(join(dir, 'out', 'fort-agent-1.0.1.tgz')),
      join(dir, 'releases'),
      { maxBytes: 200 * 1024 * 1024, maxEntries: 100_000 },
    );
    expect(unpacked.version).toBe('1.0.1');
    // A different key does not validate it.
    execFileSync('openssl', ['genrsa', '-traditional', '-out', join(dir, 'k2.pem'), '2048'], { stdio: 'ignore' });
    execFileSync('openssl', ['rsa', '-in', join(dir, 'k2.pem'), '-pubout', '-out', join(dir, 'pub2.pem')], {
      stdio: 'ignore',
    });
    await expect(run('mender-artifact', ['validate', '-k', join(dir, 'pub2.pem'), artifact])).rejects.toMatchObject({
      stderr: expect.stringContaining('verification error'),
    });
  });

  it('refuses a version that is not semver', async () => {
    await expect(
      run(process.execPath, [
        join(DIST, 'scripts/release.js'),
        '--version',
        'latest',
        '--device-type',
        't',
        '--out',
        tempDir('release'),
        '--no-node-modules',
      ]),
    ).rejects.toMatchObject({
      code: 1,
      stderr: 'release: --version: expected a semantic version like 1.2.3, got "latest"\n',
    });
  });
});

/** Every file and link under dir/rel, relative to dir; the top node_modules is left out unless listed from. */
function listFiles(dir: string, rel = ''): string[] {
  return readdirSync(join(dir, rel)).flatMap((e) => {
    const path = rel ? `${rel}/${e}` : e;
    if (path === 'node_modules') return [];
    return lstatSync(join(dir, path)).isDirectory() ? listFiles(dir, path) : [path];
  });
}

/** The JS files the release's units, installer and package.json bins run. */
function entryPoints(release: string): string[] {
  const named = [
    ...readdirSync(join(release, 'systemd')).map((u) => readFileSync(join(release, 'systemd', u), 'utf8')),
    readFileSync(join(release, 'scripts/install.sh'), 'utf8'),
  ].flatMap((text) => [...text.matchAll(/\b(dist\/[\w./-]+\.js)\b/g)].map((m) => m[1]!));
  const bins = Object.values(
    (JSON.parse(readFileSync(join(release, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin,
  );
  return [...new Set([...named, ...bins])].sort();
}

/** The files Node loads from the entry points (relative imports, static and dynamic), with their source maps; and imports that name no file. */
function loadedFiles(release: string, entries: string[]): { loaded: Set<string>; missing: string[] } {
  const loaded = new Set<string>();
  const missing: string[] = [];
  const queue = [...entries];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    if (loaded.has(file)) continue;
    if (!existsSync(join(release, file))) {
      missing.push(file);
      continue;
    }
    loaded.add(file);
    const text = readFileSync(join(release, file), 'utf8');
    const map = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(text)?.[1];
    if (map) loaded.add(join(dirname(file), map));
    for (const m of text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*(["'])(\.{1,2}\/[^"'\n]+?)\1/g))
      queue.push(join(dirname(file), m[2]!));
  }
  return { loaded, missing };
}

/** The packages the product's source imports (static, dynamic, and require() through createRequire), from its entry points. */
async function productPackages(sources: string[]): Promise<string[]> {
  const { metafile } = await build({
    absWorkingDir: REPO,
    entryPoints: sources,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    write: false,
    outdir: 'out',
    metafile: true,
    logLevel: 'silent',
  });
  const specifiers = Object.entries(metafile.inputs).flatMap(([file, input]) => [
    ...input.imports.filter((i) => i.external).map((i) => i.path),
    ...[...readFileSync(join(REPO, file), 'utf8').matchAll(/\brequire\(\s*(["'])([^"']+)\1\s*\)/g)].map((m) => m[2]!),
  ]);
  return [
    ...new Set(
      specifiers
        .filter((s) => !isBuiltin(s))
        .map((s) =>
          s
            .split('/')
            .slice(0, s.startsWith('@') ? 2 : 1)
            .join('/'),
        ),
    ),
  ].sort();
}

/** Every package directory under the release's node_modules (nested ones too), relative to the release. */
function installedPackages(release: string, dir = 'node_modules'): string[] {
  if (!existsSync(join(release, dir))) return [];
  return readdirSync(join(release, dir))
    .filter((e) => !e.startsWith('.'))
    .flatMap((e) =>
      e.startsWith('@') ? readdirSync(join(release, dir, e)).map((s) => `${dir}/${e}/${s}`) : [`${dir}/${e}`],
    )
    .flatMap((p) => [p, ...installedPackages(release, `${p}/node_modules`)]);
}

/** The installed packages `names` resolve to from the release's top, and their dependencies, as Node resolves them. */
function dependencyClosure(release: string, names: string[]): Set<string> {
  const resolveFrom = (from: string, name: string): string | undefined => {
    // From a package's own node_modules up to the release's, as Node looks.
    for (let dir = from; ; dir = dir.replace(/\/?node_modules\/(?:@[^/]+\/)?[^/]+$/, '') || '.') {
      const candidate = join(dir, 'node_modules', name);
      if (existsSync(join(release, candidate, 'package.json'))) return candidate;
      if (dir === '.') return undefined;
    }
  };
  const closure = new Set<string>();
  const queue = names.map((n) => resolveFrom('.', n)).filter((p) => p !== undefined);
  for (let pkg = queue.shift(); pkg !== undefined; pkg = queue.shift()) {
    if (closure.has(pkg)) continue;
    closure.add(pkg);
    const json = JSON.parse(readFileSync(join(release, pkg, 'package.json'), 'utf8')) as Record<
      string,
      Record<string, string> | undefined
    >;
    for (const dep of Object.keys({
      ...json['dependencies'],
      ...json['optionalDependencies'],
      ...json['peerDependencies'],
    })) {
      const found = resolveFrom(pkg, dep);
      if (found) queue.push(found);
    }
  }
  return closure;
}

describe('the release holds the product and nothing dev-only', () => {
  it('ships only the files and packages the product loads, enough to run without the repository', async () => {
    const dir = tempDir('release-contents');
    const release = join(dir, 'unpacked');
    expect(relative(REPO, release)).toMatch(/^\.\.\//); // no node_modules of the repository above it
    const { tarball } = buildRelease({
      version: '1.0.2',
      deviceType: 'fort-test',
      out: dir,
      nodeModules: true,
      repo: REPO,
    });
    mkdirSync(release);
    execFileSync('tar', ['-xzf', tarball, '-C', release]);

    // The product: the two daemons (units), root's self-update program (its unit), fortctl and the
    // deployment manager's CLI (package.json bins, install.sh's fortctl wrapper) and the PKI
    // generator install.sh runs.
    const entries = entryPoints(release);
    expect(entries).toEqual([
      'dist/agent/main.js',
      'dist/deployment-manager/cli.js',
      'dist/deployment-manager/main.js',
      'dist/deployment-manager/self-update.js',
      'dist/engine/main.js',
      'dist/fortctl/main.js',
      'dist/scripts/pki.js',
    ]);
    const { loaded, missing } = loadedFiles(release, entries);
    expect(missing).toEqual([]);
    // Besides what those load: the build date the agent checks the clock against, the installer and its units, the package files.
    const rest = [
      'dist/build-info.json',
      'scripts/install.sh',
      'package.json',
      'package-lock.json',
      ...readdirSync(join(REPO, 'systemd')).map((u) => `systemd/${u}`),
    ];
    expect
      .soft(
        listFiles(release)
          .filter((f) => !loaded.has(f) && !rest.includes(f))
          .sort(),
      )
      .toEqual([]);

    // Packages: the repository's dependencies are exactly what the product imports (the rest are
    // devDependencies); the release names no more, and holds nothing else in node_modules than
    // what it names and their own dependencies.
    // dist/<name>.js is bundled from <name>.ts, or <name>/main.ts (root's self-update program).
    const source = (e: string) => {
      const base = e.replace(/^dist\//, '').replace(/\.js$/, '');
      return existsSync(join(REPO, `${base}.ts`)) ? `${base}.ts` : `${base}/main.ts`;
    };
    const imported = await productPackages(entries.map(source));
    expect
      .soft(
        Object.keys(
          (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> })
            .dependencies,
        ).sort(),
      )
      .toEqual(imported);
    const pkg = JSON.parse(readFileSync(join(release, 'package.json'), 'utf8')) as {
      version: string;
      dependencies: Record<string, string>;
      devDependencies?: unknown;
      scripts?: unknown;
    };
    expect(pkg.version).toBe('1.0.2');
    expect.soft(pkg.devDependencies).toBeUndefined();
    expect.soft(pkg.scripts).toBeUndefined();
    const named = Object.keys(pkg.dependencies);
    expect.soft(named.filter((d) => !imported.includes(d))).toEqual([]);
    const closure = dependencyClosure(
      release,
      named.filter((d) => imported.includes(d)),
    );
    expect
      .soft(
        installedPackages(release)
          .filter((p) => !closure.has(p))
          .sort(),
      )
      .toEqual([]);
    // Of a native addon's node-gyp build only the addon itself, not what it was made from.
    expect
      .soft(listFiles(release, 'node_modules').filter((f) => /\/build\//.test(f) && !f.endsWith('.node')))
      .toEqual([]);

    // And it is enough: outside the repository (no node_modules to fall back on) each entry point
    // runs and the packages it names load, native addons included.
    const exec = (args: string[]) => run(process.execPath, args, { cwd: release });
    await expect(exec(['dist/agent/main.js', '--config', join(dir, 'none.toml')])).rejects.toMatchObject({
      code: 78,
      stderr: expect.stringContaining('ENOENT'),
    });
    await expect(exec(['dist/deployment-manager/main.js', '--config', join(dir, 'none.toml')])).rejects.toMatchObject({
      code: 78,
      stderr: expect.stringContaining('ENOENT'),
    });
    expect((await exec(['dist/deployment-manager/cli.js', '--version'])).stdout).toBe('1.0.2\n');
    expect((await exec(['dist/fortctl/main.js', '--help'])).stdout).toContain('Usage: fortctl');
    expect(
      (await exec(['dist/scripts/pki.js', '--out', join(dir, 'pki'), '--zone', 'trust-zone', '--fort-id', 'f1']))
        .stdout,
    ).toContain(join(dir, 'pki', 'trust-zone', 'ca.pem'));
    const loads = `const r = require('node:module').createRequire(${JSON.stringify(join(release, 'dist/agent/main.js'))}); for (const p of ${JSON.stringify(named)}) r(p); new (r('better-sqlite3'))(':memory:').prepare('select 1').get();`;
    await exec(['-e', loads]);
  }, 180_000);
});
