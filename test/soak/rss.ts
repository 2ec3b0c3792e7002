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
  /** Elapsed seconds of the window's first and last samples. */
  fromSeconds: number | null;
  toSeconds: number | null;
  startMiB: number | null;
  /** The sample halfway (in time) between start and end. */
  middleMiB: number | null;
  endMiB: number | null;
  maxMiB: number;
  growthPercent: number | null;
}

/**
 * Growth of the process that ran at `toMs`, from its first sample at or after `fromMs` (and
 * `warmupMs` after it started) to its last before `toMs`: a leak shows here, a restart's
 * fresh heap does not. `toMs` is where the heap snapshots begin: the first leaves the agent
 * ~105 MiB more resident and the deployment manager ~60 MiB, most of it memory glibc keeps after
 * the snapshot freed it and gives back (or not) as it likes, so no sample after one says anything
 * about the process's own growth (taking each snapshot's jump out does not hold: a deployment
 * manager that returned 20 MiB between two snapshots read as −40 %).
 */
export function steadyGrowth(
  all: Record<string, RssSample[]>,
  fromMs: number,
  toMs: number,
  warmupMs = 30_000,
): Record<string, RssGrowth> {
  const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;
  return Object.fromEntries(
    Object.entries(all).map(([name, every]) => {
      const samples = every.filter((s) => s.atMs < toMs);
      const last = samples.at(-1);
      const maxMiB = mib(Math.max(0, ...samples.map((s) => s.rssKiB)));
      const none = {
        pid: null,
        fromSeconds: null,
        toSeconds: null,
        startMiB: null,
        middleMiB: null,
        endMiB: null,
        maxMiB,
        growthPercent: null,
      };
      if (!last) return [name, none];
      const own = samples.filter((s) => s.pid === last.pid);
      const bornMs = own[0]!.atMs;
      const first = own.find((s) => s.atMs >= fromMs && s.atMs >= bornMs + warmupMs);
      if (!first || first === last) return [name, { ...none, pid: last.pid, endMiB: mib(last.rssKiB) }];
      const halfway = (first.atMs + last.atMs) / 2;
      const middle = own
        .filter((s) => s.atMs >= first.atMs)
        .reduce((a, b) => (Math.abs(b.atMs - halfway) < Math.abs(a.atMs - halfway) ? b : a));
      return [
        name,
        {
          pid: last.pid,
          fromSeconds: Math.round(first.atMs / 1000),
          toSeconds: Math.round(last.atMs / 1000),
          startMiB: mib(first.rssKiB),
          middleMiB: mib(middle.rssKiB),
          endMiB: mib(last.rssKiB),
          maxMiB,
          growthPercent: Math.round(((last.rssKiB - first.rssKiB) / first.rssKiB) * 1000) / 10,
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
