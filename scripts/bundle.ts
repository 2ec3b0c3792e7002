#!/usr/bin/env node
import { rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build } from 'esbuild';

/**
 * Replaces the product's entry points in dist/ (tsc's output, type-checked) with bundles of the
 * same code and its dependencies, as balena-supervisor ships itself: one minified file per
 * process instead of hundreds of modules saves ~10 MB of resident memory per daemon (module
 * records and the source text V8 keeps of every module). Modules loaded on demand (the IoT
 * link, the update service) and code the entry points share are separate chunks, loaded only
 * when needed.
 *
 * The bundles are the product, all of what a release ships of dist/: the three daemons, the two
 * operator CLIs and the PKI generator install.sh runs. dist/product.json lists their files and
 * the packages they load from node_modules at run time (scripts/release.ts ships exactly those).
 * Usage: bundle.js [repo root]
 */
const root = process.argv[2] ?? process.cwd();
const dist = join(root, 'dist');
const chunks = join(dist, 'chunks');

/** Output (under dist/, without .js) → source: what systemd, install.sh and the package.json bins run. */
const ENTRY_POINTS = {
  'agent/main': 'agent/main.ts',
  'deployment-manager/main': 'deployment-manager/main.ts',
  // fort-engine: app data (DuckDB), part of the agent's release.
  'engine/main': 'engine/main.ts',
  'fortctl/main': 'fortctl/main.ts',
  'deployment-manager/cli': 'deployment-manager/cli.ts',
  // Root's fort-dm-self-update.service: installs and guards a new deployment manager.
  'deployment-manager/self-update': 'deployment-manager/self-update/main.ts',
  // install.sh makes the installation's trust-zone and client-zone PKI with it.
  'scripts/pki': 'scripts/pki.ts',
};
/** Native addons load their .node file relative to their own package: installed, not bundled. */
const EXTERNAL = ['better-sqlite3', 'unix-dgram', '@duckdb/node-api'];

/** dist/product.json: what a release holds of dist/ and node_modules. */
export interface ProductManifest {
  /** Entry points, relative to dist/. */
  entryPoints: string[];
  /** Every file the bundles are made of (entry points, chunks, source maps), relative to dist/. */
  files: string[];
  /** Packages the bundles load from node_modules. */
  packages: string[];
}

rmSync(chunks, { recursive: true, force: true });
const { metafile } = await build({
  absWorkingDir: root,
  entryPoints: ENTRY_POINTS,
  outdir: dist,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  minify: true,
  // Names kept: stack traces in the journal stay readable, error classes keep their names.
  keepNames: true,
  sourcemap: 'linked',
  // CommonJS dependencies call require() for Node's built-ins; ESM has none of its own.
  banner: {
    js: "import { createRequire as __fortCreateRequire } from 'node:module'; const require = __fortCreateRequire(import.meta.url);",
  },
  metafile: true,
  logLevel: 'warning',
});
const manifest: ProductManifest = {
  entryPoints: Object.keys(ENTRY_POINTS).map((e) => `${e}.js`),
  files: Object.keys(metafile.outputs)
    .map((f) => relative(dist, join(root, f)))
    .sort(),
  packages: EXTERNAL,
};
writeFileSync(join(dist, 'product.json'), `${JSON.stringify(manifest, null, 2)}\n`);
