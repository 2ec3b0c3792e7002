import { readFileSync } from 'node:fs';

export interface RssSample {
  atMs: number;
  pid: number;
  rssKiB: number;
}

export function rssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined; // between a kill and the restart
  }
}

/** Samples each process's resident set every 5 s, with its pid (a restart is a new process). */
export function createRssSampler(pids: Record<string, () => number | undefined>, elapsed: () => number) {
  const samples: Record<string, RssSample[]> = Object.fromEntries(Object.keys(pids).map((n) => [n, []]));
  let timer: NodeJS.Timeout | undefined;
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) {
      const p = pid();
      const kib = p === undefined ? undefined : rssKiB(p);
      if (p !== undefined && kib !== undefined) samples[name]!.push({ atMs: elapsed(), pid: p, rssKiB: kib });
    }
  };
  return {
    start() {
      sample();
      timer = setInterval(sample, 5000);
    },
    stop() {
      clearInterval(timer);
      sample();
    },
    samples: () => samples,
  };
}

export interface RssGrowth {
  pid: number | null;
  startMiB: number | null;
  /** The sample halfway (in time) between start and end. */
  middleMiB: number | null;
  endMiB: number | null;
  maxMiB: number;
  growthPercent: number | null;
  /** What the heap snapshots themselves added to this process's RSS, taken out of start and end. */
  snapshotsMiB: number;
}

/** A heap snapshot of `pid` from `fromMs` to `toMs`: its RSS rose by `kib` meanwhile. */
export interface RssExclusion {
  pid: number;
  fromMs: number;
  toMs: number;
  kib: number;
}

/**
 * Growth of the process that ran at the end, from its first sample at or after `fromMs` (and
 * `warmupMs` after it started) to its last: a leak shows here, a restart's fresh heap does not.
 * A heap snapshot's own allocations are not a leak: the first leaves the agent ~105 MiB more
 * resident, the deployment manager ~60 MiB (each next a few MiB), so samples during one are
 * dropped and each later sample counts without what the snapshots before it added (`excluded`).
 * Most of it is memory glibc keeps after the snapshot freed it (gdb's malloc_stats() after the
 * first: the deployment manager's main arena 60 MB from the system, 3.6 MB in use; the agent's
 * 104 MB, 5.3 MB; V8's heap profiler keeps 9–19 MB of strings and object ids). Later malloc()s
 * reuse it without growing RSS: native growth smaller than that is not seen here once a
 * snapshot was taken (the JS heap's is: V8's pages are not malloc()ed, and heap.ts judges it).
 */
export function steadyGrowth(
  all: Record<string, RssSample[]>,
  fromMs: number,
  warmupMs = 30_000,
  excluded: Record<string, RssExclusion[]> = {},
): Record<string, RssGrowth> {
  const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;
  return Object.fromEntries(
    Object.entries(all).map(([name, samples]) => {
      const last = samples.at(-1);
      const maxMiB = mib(Math.max(0, ...samples.map((s) => s.rssKiB)));
      const none = {
        pid: null,
        startMiB: null,
        middleMiB: null,
        endMiB: null,
        maxMiB,
        growthPercent: null,
        snapshotsMiB: 0,
      };
      if (!last) return [name, none];
      const cuts = (excluded[name] ?? []).filter((e) => e.pid === last.pid);
      const snapshotsMiB = mib(cuts.reduce((sum, e) => sum + e.kib, 0));
      const bornMs = samples.find((s) => s.pid === last.pid)!.atMs;
      const own = samples
        .filter((s) => s.pid === last.pid && !cuts.some((e) => s.atMs >= e.fromMs && s.atMs < e.toMs))
        .map((s) => ({
          ...s,
          rssKiB: s.rssKiB - cuts.filter((e) => e.toMs <= s.atMs).reduce((sum, e) => sum + e.kib, 0),
        }));
      const end = own.at(-1);
      const first = own.find((s) => s.atMs >= fromMs && s.atMs >= bornMs + warmupMs);
      if (!end || !first || first === end)
        return [name, { ...none, pid: last.pid, endMiB: end ? mib(end.rssKiB) : null, snapshotsMiB }];
      const halfway = (first.atMs + end.atMs) / 2;
      const middle = own
        .filter((s) => s.atMs >= first.atMs)
        .reduce((a, b) => (Math.abs(b.atMs - halfway) < Math.abs(a.atMs - halfway) ? b : a));
      return [
        name,
        {
          pid: last.pid,
          startMiB: mib(first.rssKiB),
          middleMiB: mib(middle.rssKiB),
          endMiB: mib(end.rssKiB),
          maxMiB,
          growthPercent: Math.round(((end.rssKiB - first.rssKiB) / first.rssKiB) * 1000) / 10,
          snapshotsMiB,
        },
      ];
    }),
  );
}

/**
 * RSS growth that fails a soak: the 5 % once the measured window is long (30-minute runs
 * and more: a 15-minute window), 10 % for shorter runs, whose 2-minute window is mostly warm-up
 * (SQLite's page caches filling their 3 MiB, V8 compiling the hot code).
 */
export const rssGrowthLimitPercent = (minutes: number) => (minutes >= 30 ? 5 : 10);
