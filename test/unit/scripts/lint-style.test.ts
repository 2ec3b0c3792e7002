import { afterAll, describe, expect, it } from 'vitest';
import { exec } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format } from 'prettier';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SCRIPTS = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
  .scripts;

function run(command: string, cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((done) => {
    const env = { ...process.env, PATH: `${join(REPO, 'node_modules', '.bin')}:${process.env['PATH'] ?? ''}` };
    exec(command, { cwd, env }, (err, stdout, stderr) =>
      done({ code: err ? (err.code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

const dirs: string[] = [];
const prettierConfig = JSON.parse(readFileSync(join(REPO, '.prettierrc.json'), 'utf8')) as Record<string, unknown>;
/** JSON as prettier writes it, so the fixture's own files pass the format check. */
const json = (file: string, value: unknown) => format(JSON.stringify(value), { ...prettierConfig, filepath: file });

/** A tree of files with the repository's prettier and eslint configs (and its packages) beside it. */
async function fixture(files: Record<string, string>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'fort-lint-style-'));
  dirs.push(dir);
  for (const f of ['.prettierrc.json', '.prettierignore', 'eslint.config.js'])
    copyFileSync(join(REPO, f), join(dir, f));
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'package.json'), await json('package.json', { type: 'module' }));
  const compilerOptions = { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, types: ['node'] };
  writeFileSync(join(dir, 'tsconfig.json'), await json('tsconfig.json', { compilerOptions, include: ['src'] }));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const FORMATTED = 'export const greet = (name: string): string => `hello ${name}`;\n';

describe('npm run lint: formatting (prettier) and type-checked rules (typescript-eslint)', () => {
  it('runs both, after tsc and the import rules', () => {
    const steps = SCRIPTS['lint']!.split('&&').map((s) => s.trim());
    expect(steps).toEqual(expect.arrayContaining(['npm run --silent lint:eslint', 'npm run --silent lint:format']));
  });

  it('fails on unformatted code, naming the file; passes once it is formatted', async () => {
    const dir = await fixture({
      'src/ok.ts': FORMATTED,
      'src/messy.ts': 'export const greet=(name:string):string=>{return "hello "+name}\n',
    });
    const bad = await run(SCRIPTS['lint:format']!, dir);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toContain('src/messy.ts');
    expect(bad.out).not.toContain('src/ok.ts');

    writeFileSync(join(dir, 'src/messy.ts'), FORMATTED);
    expect(await run(SCRIPTS['lint:format']!, dir)).toMatchObject({ code: 0 });
  });

  it('fails on a floating promise and on an any leaking into typed code, naming rule and line', async () => {
    const dir = await fixture({
      'src/ok.ts': FORMATTED,
      'src/bad.ts': [
        'export async function save(): Promise<void> {}',
        'export function caller(): void {',
        '  save();',
        '}',
        'export const n: number = JSON.parse("1");',
        '',
      ].join('\n'),
    });
    const bad = await run(SCRIPTS['lint:eslint']!, dir);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/bad\.ts[\s\S]*3:3\s+error[^\n]*@typescript-eslint\/no-floating-promises/);
    expect(bad.out).toMatch(/5:14\s+error[^\n]*@typescript-eslint\/no-unsafe-assignment/);
    expect(bad.out).not.toContain('ok.ts');

    rmSync(join(dir, 'src/bad.ts'));
    expect(await run(SCRIPTS['lint:eslint']!, dir)).toMatchObject({ code: 0 });
  });
});
