import { readFileSync } from 'node:fs';

export interface RssSample {
  atMs: number;
  pid: number;
  rssKiB: number;
}

function rssKiB(pid: number): number | undefined {
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
  endMiB: number | null;
  maxMiB: number;
  growthPercent: number | null;
}

/**
 * Growth of the process that ran at the end, from its first sample at or after `fromMs` (and
 * `warmupMs` after it started) to its last: a leak shows here, a restart's fresh heap does not.
 */
export function steadyGrowth(
  all: Record<string, RssSample[]>,
  fromMs: number,
  warmupMs = 30_000,
): Record<string, RssGrowth> {
  const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;
  return Object.fromEntries(
    Object.entries(all).map(([name, samples]) => {
      const last = samples.at(-1);
      const maxMiB = mib(Math.max(0, ...samples.map((s) => s.rssKiB)));
      if (!last) return [name, { pid: null, startMiB: null, endMiB: null, maxMiB, growthPercent: null }];
      const own = samples.filter((s) => s.pid === last.pid);
      const first = own.find((s) => s.atMs >= fromMs && s.atMs >= own[0]!.atMs + warmupMs);
      if (!first || first === last)
        return [name, { pid: last.pid, startMiB: null, endMiB: mib(last.rssKiB), maxMiB, growthPercent: null }];
      return [
        name,
        {
          pid: last.pid,
          startMiB: mib(first.rssKiB),
          endMiB: mib(last.rssKiB),
          maxMiB,
          growthPercent: Math.round(((last.rssKiB - first.rssKiB) / first.rssKiB) * 1000) / 10,
        },
      ];
    }),
  );
}
