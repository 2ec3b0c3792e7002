/**
 * The import rules of ARCHITECTURE.md ("Import directions"), checked by `npm run lint`.
 * Paths are relative to the directory depcruise runs in (the repository root; the lint test runs
 * it in a fixture tree). Type-only imports count: a type shared across a boundary is a coupling.
 */

/** The processes: they meet only over trust-zone mTLS, never through each other's code. */
const PROCESSES = '(agent|deployment-manager|fortctl|engine)';
/** What ships to a host: the processes, lib/, and the PKI generator install.sh runs. */
const PRODUCT = `^(${PROCESSES}|lib)/|^scripts/pki\\.ts$`;

module.exports = {
  forbidden: [
    {
      name: 'processes-apart',
      comment:
        'agent/, deployment-manager/, fortctl/ and engine/ never import each other; what they share lives in lib/',
      severity: 'error',
      from: { path: `^${PROCESSES}/` },
      to: { path: `^${PROCESSES}/`, pathNot: '^$1/' },
    },
    {
      name: 'lib-below-all',
      comment: 'lib/ is the bottom layer: it imports none of the processes, the dev cloud, the scripts or the tests',
      severity: 'error',
      from: { path: '^lib/' },
      to: { path: `^(${PROCESSES}|dev-cloud|scripts|test)/` },
    },
    {
      name: 'product-not-dev',
      comment: 'the product (what a release ships) never imports the dev cloud, dev scripts or tests',
      severity: 'error',
      from: { path: PRODUCT },
      to: { path: '^(dev-cloud|scripts|test)/', pathNot: '^scripts/pki\\.ts$' },
    },
    {
      name: 'installer-pki-from-lib',
      comment: 'scripts/pki.ts ships and install.sh runs it: it builds on lib/ only, not on a process',
      severity: 'error',
      from: { path: '^scripts/pki\\.ts$' },
      to: { path: `^${PROCESSES}/` },
    },
    {
      name: 'dev-cloud-independent',
      comment:
        'the stand-in is an independent implementation of the cloud side: a bug shared with the code it checks would pass every test',
      severity: 'error',
      from: { path: '^dev-cloud/' },
      to: { path: `^${PROCESSES}/` },
    },
    {
      name: 'dev-cloud-own-crypto',
      comment:
        "the dev cloud verifies CSRs and issues certificates with its own code, not with the fort's key and certificate helpers",
      severity: 'error',
      from: { path: '^dev-cloud/' },
      to: { path: '^lib/pki/(certs|generate)\\.ts$' },
    },
    {
      name: 'resolvable',
      comment: 'an import depcruise cannot resolve is an import no rule above can check',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // No includeOnly: it would also drop the imports that do not resolve, and `resolvable` with them.
    exclude: { path: '(^|/)(node_modules|dist|\\.fort-dev)/' },
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    // NodeNext: `./x.js` in source names `./x.ts` (depcruise maps it when no .js file exists).
    tsConfig: { fileName: 'tsconfig.json' },
    // Packages resolve as Node resolves an ESM import: through `exports` (got, aedes have no `main`).
    enhancedResolveOptions: { conditionNames: ['import', 'node', 'default'], exportsFields: ['exports'] },
  },
};
