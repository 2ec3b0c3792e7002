import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ConfinedFileRefused, openConfined, openedAsChecked } from '../../../lib/confined-file.js';
import { tempDir } from '../../helpers/fort.js';

/**
 * Source files are checked from the open descriptor, not the path: a path swapped for a symlink
 * (or renamed over) after the check cannot make a load read another file.
 */

function layout() {
  const root = tempDir('confined');
  const data = join(root, 'data');
  mkdirSync(data);
  const secret = join(root, 'secret.txt');
  writeFileSync(secret, 'the agent key\n');
  return { root, data, secret };
}

const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return err instanceof ConfinedFileRefused ? err.reason : err;
  }
  return 'opened';
};

describe('openConfined', () => {
  it('opens a regular file inside the directories, naming where it really is', () => {
    const { data } = layout();
    const file = join(data, 'orders.csv');
    writeFileSync(file, 'id\n1\n');
    const f = openConfined(file, [data]);
    try {
      expect(f.realPath).toBe(file);
      expect(readFileSync(f.procPath, 'utf8')).toBe('id\n1\n');
    } finally {
      f.close();
    }
  });

  it('refuses a symlink out, a FIFO (without blocking), a directory and a missing file', () => {
    const { root, data, secret } = layout();
    symlinkSync(secret, join(data, 'link.csv'));
    execFileSync('mkfifo', [join(data, 'pipe.csv')]);
    mkdirSync(join(data, 'dir.csv'));
    expect(refusal(() => openConfined(join(data, 'link.csv'), [data]))).toBe('outside');
    expect(refusal(() => openConfined(join(data, 'pipe.csv'), [data]))).toBe('not_regular');
    expect(refusal(() => openConfined(join(data, 'dir.csv'), [data]))).toBe('not_regular');
    expect(refusal(() => openConfined(join(data, 'gone.csv'), [data]))).toBe('unreadable');
    expect(refusal(() => openConfined(secret, [data]))).toBe('outside');
    expect(refusal(() => openConfined(secret, [root]))).toBe('opened');
  });

  it('reads the checked file even when its path is swapped for a symlink out afterwards', () => {
    const { data, secret } = layout();
    const file = join(data, 'orders.csv');
    writeFileSync(file, 'id\n1\n');
    const f = openConfined(file, [data]);
    try {
      rmSync(file);
      symlinkSync(secret, file); // the race: after the check, before the read
      expect(readFileSync(f.procPath, 'utf8')).toBe('id\n1\n');
      expect(readFileSync(file, 'utf8')).toBe('the agent key\n'); // what a read by path would get
    } finally {
      f.close();
    }
  });
});

describe('openedAsChecked (a library that opens by path: SQLite)', () => {
  const sqlite = (path: string, v: string) => {
    const db = new Database(path);
    db.exec(`CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('${v}')`);
    db.close();
  };

  it('true for the checked database, false once the path was swapped by a symlink or a rename', () => {
    const { root, data } = layout();
    const file = join(data, 'crm.sqlite');
    sqlite(file, 'mine');
    const outside = join(root, 'other.sqlite');
    sqlite(outside, 'theirs');

    const check = openConfined(file, [data]);
    const same = new Database(file, { readonly: true });
    expect(openedAsChecked(check)).toBe(true);
    same.close();

    rmSync(file);
    symlinkSync(outside, file);
    const swapped = new Database(file, { readonly: true });
    expect(openedAsChecked(check)).toBe(false);
    swapped.close();

    rmSync(file);
    const renamedOver = join(data, 'new.sqlite');
    sqlite(renamedOver, 'renamed');
    renameSync(renamedOver, file);
    const renamed = new Database(file, { readonly: true });
    expect(openedAsChecked(check)).toBe(false);
    renamed.close();
    check.close();
  });
});
