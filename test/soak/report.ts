import type { RssGrowth } from './rss.js';

export interface SoakReport {
  name: 'soak';
  seed: number;
  minutes: number;
  events: { sent: number; handled: number; lost: number; duplicatesApplied: number; notSentBrokerRefused: number };
  requests: { ok: number; failed: number; byOutcome: Record<string, number> };
  update: { deployment: string | null; status: string; agentVersion: string | null };
  chaos: Record<string, number>;
  restarts: Record<string, number>;
  rss: Record<string, RssGrowth>;
  machine: { cpus: number; memoryGiB: number; node: string };
  at: string;
  failures?: string[];
}

export function printReport(r: SoakReport, out: (line: string) => void): void {
  out(`soak report (${r.minutes} min, seed ${r.seed})`);
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
      `  RSS        ${name.padEnd(19)} start ${g.startMiB ?? '-'} MiB, end ${g.endMiB ?? '-'} MiB, growth ${g.growthPercent === null ? '-' : `${g.growthPercent} %`} (max ${g.maxMiB} MiB)`,
    );
  }
  out(
    r.failures?.length
      ? `  FAILED     ${r.failures.join('; ')}`
      : '  passed     0 lost, 0 applied twice, update landed, RSS growth < 10 %',
  );
}
