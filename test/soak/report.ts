import { show, type HeapGrowth } from './heap.js';
import { rssGrowthLimitPercent, type RssGrowth } from './rss.js';

export interface SoakReport {
  name: 'soak';
  seed: number;
  minutes: number;
  accelerated: boolean;
  intervalsSeconds: Record<string, number>;
  events: { sent: number; handled: number; lost: number; duplicatesApplied: number; notSentBrokerRefused: number };
  requests: { ok: number; failed: number; byOutcome: Record<string, number> };
  update: { deployment: string | null; status: string; agentVersion: string | null };
  chaos: Record<string, number>;
  restarts: Record<string, number>;
  rss: Record<string, RssGrowth>;
  heap: Record<string, HeapGrowth>;
  machine: { cpus: number; memoryGiB: number; node: string };
  at: string;
  failures?: string[];
}

export function printReport(r: SoakReport, out: (line: string) => void): void {
  out(`soak report (${r.minutes} min, seed ${r.seed}${r.accelerated ? ', accelerated' : ''})`);
  out(
    `  intervals  deployment manager ${Object.entries(r.intervalsSeconds)
      .map(([k, v]) => `${k} ${v} s`)
      .join(', ')}`,
  );
  out(
    `  events     sent ${r.events.sent}, handled ${r.events.handled}, lost ${r.events.lost}, applied twice ${r.events.duplicatesApplied}`,
  );
  out(`  requests   ok ${r.requests.ok}, failed ${r.requests.failed}  ${JSON.stringify(r.requests.byOutcome)}`);
  out(`  update     ${r.update.deployment ?? '-'}: ${r.update.status}; agent on ${r.update.agentVersion ?? '?'}`);
  out(
    `  chaos      ${Object.entries(r.chaos)
      .map(([k, v]) => `${k} ×${v}`)
      .join(', ')}; restarts ${Object.entries(r.restarts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  for (const [name, g] of Object.entries(r.rss)) {
    out(
      `  RSS        ${name.padEnd(19)} ${g.fromSeconds ?? '-'}–${g.toSeconds ?? '-'} s: start ${g.startMiB ?? '-'} MiB, middle ${g.middleMiB ?? '-'} MiB, end ${g.endMiB ?? '-'} MiB, growth ${g.growthPercent === null ? '-' : `${g.growthPercent} %`} (max ${g.maxMiB} MiB)`,
    );
  }
  for (const [name, h] of Object.entries(r.heap)) {
    const head = `  heap       ${name.padEnd(19)} `;
    if (h.notMeasured) {
      out(`${head}not measured: ${h.notMeasured}`);
      continue;
    }
    out(`${head}pid ${h.pid}, snapshots at ${h.atSeconds.join(' / ')} s (start → middle → end):`);
    for (const [k, c] of Object.entries(h.classes)) {
      const v = (n: number) => show(k, n);
      out(
        `             ${k.padEnd(16)} ${v(c.start)} → ${v(c.middle)} → ${v(c.end)}  (${c.growth >= 0 ? '+' : ''}${v(c.growth)}, ${c.growthPercent} %)${c.failed ? '  GREW STEADILY' : ''}`,
      );
    }
    out(
      `             code             ${h.codeBytes.map((n) => (n / 2 ** 20).toFixed(2)).join(' → ')} MiB (not judged)`,
    );
    out(
      `             most grown       ${Object.entries(h.topGrowth)
        .map(([k, n]) => `${k} ${n >= 0 ? '+' : ''}${n}`)
        .join(', ')}`,
    );
    out(
      `             cost             snapshot ${h.cost.snapshotMs.join(' / ')} ms, counting ${h.cost.countMs.join(' / ')} ms, files ${h.cost.fileMiB.join(' / ')} MiB; RSS ${h.cost.rssMiB.map(([b, a]) => `${b} → ${a}`).join(', ')} MiB`,
    );
  }
  out(
    r.failures?.length
      ? `  FAILED     ${r.failures.join('; ')}`
      : `  passed     0 lost, 0 applied twice, update landed, RSS growth < ${rssGrowthLimitPercent(r.minutes)} %, no steady growth of retained objects`,
  );
}
