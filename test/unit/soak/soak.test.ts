import { describe, expect, it } from 'vitest';
import { rssGrowthLimitPercent, steadyGrowth, type RssSample } from '../../soak/rss.js';
import { createChaos, mulberry32 } from '../../soak/chaos.js';

const s = (atMs: number, pid: number, mib: number): RssSample => ({ atMs, pid, rssKiB: mib * 1024 });

describe('soak RSS growth', () => {
  it('measures the process running at the end, from after the chaos and its warm-up, not a killed one', () => {
    const samples = {
      agent: [
        s(0, 1, 100),
        s(50_000, 1, 300),
        s(60_000, 2, 40),
        s(100_000, 2, 80),
        s(130_000, 2, 82),
        s(200_000, 2, 90.2),
      ],
    };
    // Chaos ended at 90 s: pid 2's first sample at or after 90 s and 30 s after its start is at 100 s.
    expect(steadyGrowth(samples, 90_000, 300_000, 30_000)['agent']).toEqual({
      pid: 2,
      fromSeconds: 100,
      toSeconds: 200,
      startMiB: 80,
      middleMiB: 82, // at 130 s, nearest to 150 s, halfway between 100 and 200 s
      endMiB: 90.2,
      maxMiB: 300,
      growthPercent: 12.8,
    });
  });

  it('ends before the heap phase: a snapshot spoils the RSS of its process', () => {
    const samples = {
      agent: [
        s(0, 1, 90),
        s(100_000, 1, 100),
        s(150_000, 1, 101),
        s(199_000, 1, 104),
        s(200_000, 1, 205), // the first snapshot starts at 200 s
        s(250_000, 1, 185), // glibc gave some back
        s(300_000, 2, 70), // restarted during the heap phase: not the process judged
      ],
    };
    expect(steadyGrowth(samples, 90_000, 200_000, 30_000)['agent']).toEqual({
      pid: 1,
      fromSeconds: 100,
      toSeconds: 199,
      startMiB: 100,
      middleMiB: 101, // at 150 s, halfway between 100 and 199 s
      endMiB: 104,
      maxMiB: 104,
      growthPercent: 4,
    });
    // Judged to the end, the snapshot's memory would read as a leak (or, after a restart, as nothing).
    expect(steadyGrowth(samples, 90_000, 260_000, 30_000)['agent']!.growthPercent).toBe(85);
  });

  it("fails at the issue's 5 % once the window is long, at 10 % in short runs that are mostly warm-up", () => {
    expect(rssGrowthLimitPercent(60)).toBe(5);
    expect(rssGrowthLimitPercent(30)).toBe(5);
    expect(rssGrowthLimitPercent(5)).toBe(10);
  });

  it('says it could not measure when the last process is too young', () => {
    const samples = { dm: [s(0, 1, 50), s(150_000, 2, 40), s(160_000, 2, 41)] };
    expect(steadyGrowth(samples, 90_000, 300_000, 30_000)['dm']!.growthPercent).toBeNull();
  });
});

describe('soak chaos schedule', () => {
  it('replays the same schedule from the same seed, does every action once first, kills only until killsEndMs', () => {
    const schedule = (seed: number) => {
      let now = 0;
      const done: { name: string; atMs: number }[] = [];
      const timers: (() => void)[] = [];
      const realSetTimeout = globalThis.setTimeout;
      // Drive the schedule by hand: each timer fires at once, advancing the clock by its wait.
      globalThis.setTimeout = ((fn: () => void, ms: number) => {
        timers.push(() => {
          now += ms;
          fn();
        });
        return 0 as unknown as NodeJS.Timeout;
      }) as typeof setTimeout;
      const act = (name: string) => () => done.push({ name, atMs: now });
      try {
        const chaos = createChaos({
          random: mulberry32(seed),
          elapsed: () => now,
          killsEndMs: 70_000,
          chaosEndMs: 140_000,
          durationMs: 280_000,
          actions: {
            'kill a': act('kill a'),
            'kill b': act('kill b'),
            disk: act('disk'),
            'drop link': act('drop link'),
          },
          log: () => {},
        });
        chaos.start();
        while (now < 280_000 && timers.length) timers.shift()!();
        return { done, counts: chaos.counts() };
      } finally {
        globalThis.setTimeout = realSetTimeout;
      }
    };
    const one = schedule(7);
    expect(schedule(7)).toEqual(one);
    expect(schedule(8).done).not.toEqual(one.done);
    for (const seed of [1, 2, 3, 7, 8]) {
      const { done } = schedule(seed);
      // Each once before any repeats: the first round (a kill due after killsEndMs is skipped).
      const kinds = done.filter((d) => d.atMs < 70_000).map((d) => d.name);
      expect(new Set(kinds.slice(0, 4)).size).toBe(Math.min(4, kinds.length));
      expect(done.filter((d) => d.name.startsWith('kill') && d.atMs >= 70_000)).toEqual([]);
      expect(done.filter((d) => d.name === 'disk' && d.atMs >= 140_000)).toEqual([]);
      // After the chaos phase links keep dropping.
      expect(done.filter((d) => d.atMs >= 140_000).length).toBeGreaterThan(2);
    }
    expect(one.counts['kill a']! + one.counts['kill b']!).toBeGreaterThan(0);
  });
});
