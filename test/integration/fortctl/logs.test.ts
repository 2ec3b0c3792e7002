import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DIST, eventually, tempDir } from '../../helpers/fort.js';

const run = promisify(execFile);
const FORTCTL = join(DIST, 'fortctl/main.js');

/** The real fortctl process, its stdout collected as it comes. */
function follow(args: string[]): {
  child: ChildProcess;
  out: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
} {
  const child = spawn(process.execPath, [FORTCTL, 'logs', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, out: () => out, exited };
}

const shows = (p: { out: () => string }, text: string, what: string) =>
  eventually(() => (p.out().endsWith(text) ? true : undefined), 10_000, `${what}; got ${JSON.stringify(p.out())}`);

describe('fortctl logs --file', () => {
  const dir = tempDir('logs');
  const file = join(dir, 'agent.log');
  const running: ChildProcess[] = [];
  beforeEach(() => writeFileSync(file, 'one\ntwo\nthree\nfour\n'));
  afterAll(() => {
    for (const c of running) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints exactly the last --lines lines', async () => {
    const r = await run(process.execPath, [FORTCTL, 'logs', '--file', file, '--lines', '2']);
    expect(r.stdout).toBe('three\nfour\n');
    // A last line without its newline is a line too.
    appendFileSync(file, 'five');
    expect((await run(process.execPath, [FORTCTL, 'logs', '--file', file, '-n', '2'])).stdout).toBe('four\nfive');
    expect((await run(process.execPath, [FORTCTL, 'logs', '--file', file, '-n', '100'])).stdout).toBe(
      'one\ntwo\nthree\nfour\nfive',
    );
  });

  it('with --follow prints appended lines, starts over after truncation and rotation, and exits 0 on SIGINT', async () => {
    const p = follow(['--file', file, '--follow', '--lines', '1']);
    running.push(p.child);
    await shows(p, 'four\n', 'the last line');
    appendFileSync(file, 'five\nsix\n');
    await shows(p, 'four\nfive\nsix\n', 'the appended lines');
    // copytruncate: emptied, then more written than was there before (the size alone cannot tell).
    truncateSync(file, 0);
    appendFileSync(file, 'after truncation: a line longer than everything before it\n');
    await shows(p, 'six\nafter truncation: a line longer than everything before it\n', 'the lines after truncation');
    // Rotation: renamed away (a late line still goes to the old file), a new file in its place.
    renameSync(file, `${file}.1`);
    appendFileSync(`${file}.1`, 'late in the old file\n');
    writeFileSync(file, 'first of the new file\n');
    await shows(p, 'late in the old file\nfirst of the new file\n', 'the rotated file');
    const sent = Date.now();
    p.child.kill('SIGINT');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - sent).toBeLessThan(2000);
  });

  it('stops on SIGTERM with exit 0 too', async () => {
    const p = follow(['--file', file, '-f', '-n', '1']);
    running.push(p.child);
    await shows(p, 'four\n', 'the last line');
    appendFileSync(file, 'appended\n');
    await shows(p, 'appended\n', 'the appended line');
    expect(p.out()).toBe('four\nappended\n');
    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
  });

  it("reads the dev stack's log file by default, and without journalctl or a file says to pass --file (exit 1)", async () => {
    const cwd = tempDir('logs-cwd');
    const noJournal = { ...process.env, PATH: join(cwd, 'no-bin') };
    try {
      const missing = await run(process.execPath, [FORTCTL, 'logs'], { cwd, env: noJournal }).then(
        () => undefined,
        (e: { code: number; stderr: string }) => e,
      );
      expect(missing?.code).toBe(1);
      expect(missing?.stderr).toMatch(
        /^fortctl: journalctl not found .*: pass --file <log file>.*\.fort-dev\/logs\/agent\.log/,
      );
      mkdirSync(join(cwd, '.fort-dev/logs'), { recursive: true });
      writeFileSync(join(cwd, '.fort-dev/logs/deployment-manager.log'), 'dm 1\ndm 2\n');
      expect(
        (
          await run(process.execPath, [FORTCTL, 'logs', '--unit', 'deployment-manager', '-n', '1'], {
            cwd,
            env: noJournal,
          })
        ).stdout,
      ).toBe('dm 2\n');
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('refuses a missing file (exit 1)', async () => {
    const r = await run(process.execPath, [FORTCTL, 'logs', '--file', join(dir, 'nope.log')]).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(r?.code).toBe(1);
    expect(r?.stderr).toBe(`fortctl: cannot read ${join(dir, 'nope.log')}: ENOENT\n`);
  });
});
