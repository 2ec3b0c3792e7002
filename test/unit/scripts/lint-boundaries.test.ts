import { afterAll, describe, expect, it } from 'vitest';
import { exec } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** Exactly what `npm run lint` runs after tsc, with the repository's .dependency-cruiser.cjs. */
const COMMAND = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
  .scripts['lint:boundaries']!;

function lint(cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((done) => {
    const env = { ...process.env, PATH: `${join(REPO, 'node_modules', '.bin')}:${process.env['PATH'] ?? ''}` };
    exec(COMMAND, { cwd, env }, (err, stdout, stderr) =>
      done({ code: err ? (err.code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

/** `<rule>: <from> → <to>` of each violation the err reporter lists. */
const violations = (out: string) =>
  [...out.matchAll(/^\s*error (\S+): (\S+) → (\S+)$/gm)].map((m) => `${m[1]}: ${m[2]} → ${m[3]}`).sort();

const dirs: string[] = [];
/** A tree of TypeScript files (path → source) with the repository's lint config beside it. */
function fixture(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'fort-lint-'));
  dirs.push(dir);
  copyFileSync(join(REPO, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
  );
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const EXPORT = 'export const x = 1;\n';
/** One module of each part, importing nothing. */
const LEAVES = {
  'agent/a.ts': EXPORT,
  'deployment-manager/d.ts': EXPORT,
  'fortctl/f.ts': EXPORT,
  'engine/e.ts': EXPORT,
  'lib/logger.ts': EXPORT,
  'lib/pki/certs.ts': EXPORT,
  'lib/pki/x509.ts': EXPORT,
  'dev-cloud/c.ts': EXPORT,
  'scripts/dev.ts': EXPORT,
  'test/t.ts': EXPORT,
};

describe('npm run lint: the import rules of ARCHITECTURE.md (dependency-cruiser)', () => {
  it('fails on each forbidden import, naming the rule, the importer and the imported file; type-only and dynamic imports count', async () => {
    const dir = fixture({
      ...LEAVES,
      'agent/to-dm.ts': "import { x } from '../deployment-manager/d.js';\nexport const y = x;\n",
      'fortctl/type-from-agent.ts': "import type { x } from '../agent/a.js';\nexport type Y = typeof x;\n",
      'deployment-manager/to-engine.ts': "export const load = () => import('../engine/e.js');\n",
      'lib/to-agent.ts': "import { x } from '../agent/a.js';\nexport const y = x;\n",
      'lib/to-dev-cloud.ts': "import { x } from '../dev-cloud/c.js';\nexport const y = x;\n",
      'agent/to-dev-cloud.ts': "import { x } from '../dev-cloud/c.js';\nexport const y = x;\n",
      'fortctl/to-test.ts': "import { x } from '../test/t.js';\nexport const y = x;\n",
      'engine/to-scripts.ts': "import { x } from '../scripts/dev.js';\nexport const y = x;\n",
      'scripts/pki.ts':
        "import { x } from '../agent/a.js';\nimport { x as z } from './dev.js';\nexport const y = x + z;\n",
      'dev-cloud/to-dm.ts': "import { x } from '../deployment-manager/d.js';\nexport const y = x;\n",
      'dev-cloud/to-fort-certs.ts': "import { x } from '../lib/pki/certs.js';\nexport const y = x;\n",
      'agent/typo.ts': "import { x } from './missing.js';\nexport const y = x;\n",
      'agent/uninstalled.ts': "import { x } from 'no-such-package-installed';\nexport const y = x;\n",
    });
    const r = await lint(dir);
    expect(r.code, r.out).not.toBe(0);
    expect(violations(r.out)).toEqual([
      'dev-cloud-independent: dev-cloud/to-dm.ts → deployment-manager/d.ts',
      'dev-cloud-own-crypto: dev-cloud/to-fort-certs.ts → lib/pki/certs.ts',
      'installer-pki-from-lib: scripts/pki.ts → agent/a.ts',
      'lib-below-all: lib/to-agent.ts → agent/a.ts',
      'lib-below-all: lib/to-dev-cloud.ts → dev-cloud/c.ts',
      'processes-apart: agent/to-dm.ts → deployment-manager/d.ts',
      'processes-apart: deployment-manager/to-engine.ts → engine/e.ts',
      'processes-apart: fortctl/type-from-agent.ts → agent/a.ts',
      'product-not-dev: agent/to-dev-cloud.ts → dev-cloud/c.ts',
      'product-not-dev: engine/to-scripts.ts → scripts/dev.ts',
      'product-not-dev: fortctl/to-test.ts → test/t.ts',
      'product-not-dev: lib/to-dev-cloud.ts → dev-cloud/c.ts',
      'product-not-dev: scripts/pki.ts → scripts/dev.ts',
      'resolvable: agent/typo.ts → ./missing.js',
      'resolvable: agent/uninstalled.ts → no-such-package-installed',
    ]);
  });

  it('passes the imports the architecture allows: each process its own files and lib/, the dev cloud lib/ plumbing, dev scripts and tests anything', async () => {
    const dir = fixture({
      ...LEAVES,
      'agent/main.ts':
        "import { x } from './a.js';\nimport { x as l } from '../lib/logger.js';\nexport const y = x + l;\n",
      'fortctl/main.ts':
        "import { x } from '../lib/logger.js';\nimport { x as f } from './f.js';\nexport const y = x + f;\n",
      'dev-cloud/main.ts':
        "import { x } from '../lib/logger.js';\nimport { x as p } from '../lib/pki/x509.js';\nexport const y = x + p;\n",
      'scripts/pki.ts': "import { x } from '../lib/pki/certs.js';\nexport const y = x;\n",
      'scripts/dev-stack.ts':
        "import { x } from '../agent/a.js';\nimport { x as c } from '../dev-cloud/c.js';\nimport { x as d } from '../deployment-manager/d.js';\nexport const y = x + c + d;\n",
      'test/helper.ts':
        "import { x } from '../agent/a.js';\nimport { x as c } from '../dev-cloud/c.js';\nimport { x as s } from '../scripts/dev.js';\nexport const y = x + c + s;\n",
    });
    const r = await lint(dir);
    expect(violations(r.out)).toEqual([]);
    expect(r.code, r.out).toBe(0);
  });

  it('passes on this repository', async () => {
    const r = await lint(REPO);
    expect(violations(r.out)).toEqual([]);
    expect(r.code, r.out).toBe(0);
  });
});
