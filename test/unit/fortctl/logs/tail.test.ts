import { afterAll, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastLines, tailFile } from '../../../../fortctl/logs/tail.js';

describe('lastLines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fort-tail-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const tailOf = async (content: string | Buffer, n: number) => {
    const file = join(dir, 'f.log');
    writeFileSync(file, content);
    const fh = await open(file, 'r');
    try {
      return (await lastLines(fh, (await fh.stat()).size, n)).toString();
    } finally {
      await fh.close();
    }
  };

  it('counts a final newline as the end of the last line', async () => {
    expect(await tailOf('a\nb\nc\n', 2)).toBe('b\nc\n');
    expect(await tailOf('a\nb\nc', 2)).toBe('b\nc');
    expect(await tailOf('a\nb\n', 5)).toBe('a\nb\n');
    expect(await tailOf('a\nb\n', 0)).toBe('');
    expect(await tailOf('', 3)).toBe('');
    expect(await tailOf('\n\n\n', 2)).toBe('\n\n');
  });

  it('finds lines across read chunks of a large file', async () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i} ${'x'.repeat(i % 50)}`);
    const want = lines.slice(-3000).join('\n');
    expect(await tailOf(`${lines.join('\n')}\n`, 3000)).toBe(`${want}\n`);
  });
});

describe('tailFile --follow', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fort-follow-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Follows `file` (the last line first) and collects what is printed; `shows` waits until that much came, then compares all of it. */
  function follow(file: string, intervalMs: number) {
    let out = '';
    const stop = new AbortController();
    const done = tailFile({
      file,
      lines: 1,
      follow: true,
      intervalMs,
      signal: stop.signal,
      write: async (b) => void (out += b.toString()),
    });
    return {
      async shows(expected: string, withinMs = 2000) {
        for (const until = Date.now() + withinMs; Date.now() < until && out.length < expected.length;)
          await new Promise((r) => setTimeout(r, 2));
        expect(out).toBe(expected);
      },
      async stop() {
        stop.abort();
        await done;
      },
    };
  }

  it('starts over when the file was truncated and refilled past the old offset between two looks', async () => {
    const file = join(dir, 'f.log');
    writeFileSync(file, 'old 1\nold 2\n');
    const tail = follow(file, 20);
    await tail.shows('old 2\n');
    // Longer than before: the size alone cannot show the rewrite, the bytes before the offset do.
    truncateSync(file, 0);
    appendFileSync(file, 'a new first line, longer than the old content\n');
    await tail.shows('old 2\na new first line, longer than the old content\n');
    await tail.stop();
  });

  it('prints each rewrite whole however the looks fall: 100 rounds of truncate-and-refill against a 1 ms poll', async () => {
    const file = join(dir, 'g.log');
    writeFileSync(file, 'start\n');
    const tail = follow(file, 1);
    // Each line printed once, whole, in order: nothing lost, nothing twice.
    let expected = 'start\n';
    await tail.shows(expected);
    for (let round = 0; round < 100; round++) {
      // Each round longer than the one before: the size alone never shows the rewrite.
      const line = `round ${round} ${'x'.repeat(round)}\n`;
      truncateSync(file, 0);
      appendFileSync(file, line);
      expected += line;
      await tail.shows(expected, 1000);
    }
    await tail.stop();
  });
});
