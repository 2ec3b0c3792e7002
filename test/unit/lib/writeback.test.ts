import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { writebackKicker } from '../../../lib/writeback.js';

describe('writebackKicker', () => {
  it('starts one datasync per `everyBytes` written, never two at once, and settles after the one under way', async () => {
    const calls: number[] = [];
    const pending: (() => void)[] = [];
    const kicker = writebackKicker(7, 100, (fd, done) => {
      calls.push(fd);
      pending.push(() => done(null));
    });
    kicker.wrote(60);
    expect(calls).toEqual([]);
    kicker.wrote(60); // 120 ≥ 100: a kick
    expect(calls).toEqual([7]);
    kicker.wrote(500); // one is under way: none more
    expect(calls).toEqual([7]);
    let settled = false;
    const settling = kicker.settle().then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    pending.shift()!();
    await settling;
    expect(settled).toBe(true);
    kicker.wrote(1); // the 500 written meanwhile are still to flush: a kick now
    expect(calls).toEqual([7, 7]);
    pending.shift()!();
    await kicker.settle();
    kicker.wrote(99); // counted from the last kick: not yet
    expect(calls).toEqual([7, 7]);
    kicker.wrote(1);
    expect(calls).toEqual([7, 7, 7]);
  });

  it("keeps a kick's error for settle(): a writeback error is reported once per open file", async () => {
    // fdatasync(2) on /dev/null: EINVAL, a real error from a real descriptor.
    const fd = openSync('/dev/null', 'w');
    try {
      const kicker = writebackKicker(fd, 10);
      kicker.wrote(10);
      await expect(kicker.settle()).rejects.toMatchObject({ code: 'EINVAL', syscall: 'fdatasync' });
      await expect(kicker.settle()).rejects.toMatchObject({ code: 'EINVAL' });
    } finally {
      closeSync(fd);
    }
  });

  it('settles at once when nothing was kicked', async () => {
    const kicker = writebackKicker(3, 100, () => {
      throw new Error('no kick expected');
    });
    kicker.wrote(99);
    await expect(kicker.settle()).resolves.toBeUndefined();
  });
});
