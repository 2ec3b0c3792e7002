#!/usr/bin/env node
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

/**
 * Replaces the two daemons' entry points in dist/ (tsc's output, type-checked) with bundles of
 * the same code and its dependencies, as balena-supervisor ships itself: one minified file per
 * process instead of hundreds of modules saves ~10 MB of resident memory per process (module
 * records and the source text V8 keeps of every module). Modules loaded on demand (the IoT
 * link, the update service) stay separate chunks, loaded only when configured.
 * Usage: bundle.js [repo root]
 */
const root = process.argv[2] ?? process.cwd();
const dist = join(root, 'dist');
const chunks = join(dist, 'chunks');

rmSync(chunks, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { 'agent/main': 'agent/main.ts', 'deployment-manager/main': 'deployment-manager/main.ts' },
  outdir: dist,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Native addons load their .node file relative to their own package.
  external: ['better-sqlite3', 'unix-dgram'],
  minify: true,
  // Names kept: stack traces in the journal stay readable, error classes keep their names.
  keepNames: true,
  sourcemap: 'linked',
  // CommonJS dependencies call require() for Node's built-ins; ESM has none of its own.
  banner: { js: "import { createRequire as __fortCreateRequire } from 'node:module'; const require = __fortCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
