import type { CertificateReport } from '../../lib/admin-client.js';
import type { UpdateStateView } from '../../lib/update-state.js';
import type { HealthRegistry } from '../health.js';
import type { Reload } from '../reloads/queue.js';

export interface ReportedStateDeps {
  fortId: string;
  version: string;
  health: HealthRegistry;
  /** The newest reloads, newest first. */
  reloads: () => Reload[];
  certificates: () => CertificateReport[];
  update: () => UpdateStateView;
  /** fort-engine's version, when configured (its health answer). */
  engineVersion?: () => Promise<string>;
  /** Free space of the data directory's file system (agent/disk.ts). */
  disk: () => { freeBytes: number; freePercent: number };
}

/**
 * What the fort reports in its shadow: versions, health per module, the last reload per app
 * (app id, state, when, rows), days left per certificate, free disk, the update step. Never
 * customer data: no values, no definitions, no user ids (Qlik's data-security page allows app
 * names and ids of users; we send neither more nor less than ids and counts).
 */
export function reportedState(d: ReportedStateDeps) {
  return async (): Promise<Record<string, unknown>> => {
    const snap = d.health.snapshot();
    const lastPerApp = new Map<string, Reload>();
    for (const r of d.reloads()) if (r.finishedAt && !lastPerApp.has(r.appId)) lastPerApp.set(r.appId, r);
    const disk = d.disk();
    const update = d.update().state;
    const engine = d.engineVersion ? await d.engineVersion().catch(() => 'unreachable') : undefined;
    return {
      fortId: d.fortId,
      versions: {
        agent: d.version,
        ...(engine ? { engine } : {}),
        ...(update ? { deploymentManager: update.installed } : {}),
      },
      status: snap.draining ? 'draining' : snap.ready ? (snap.degraded ? 'degraded' : 'healthy') : 'starting',
      health: Object.fromEntries(Object.entries(snap.modules).map(([name, m]) => [name, m.state])),
      reloads: [...lastPerApp.values()].map((r) => ({
        app: r.appId,
        state: r.state,
        at: r.finishedAt,
        ...(r.rows !== null ? { rows: r.rows } : {}),
        ...(r.errorCode ? { error: r.errorCode } : {}),
      })),
      certificates: d
        .certificates()
        .filter((c) => c.index === 0)
        .map((c) => ({ role: c.role, daysLeft: c.daysLeft })),
      disk: { freeBytes: disk.freeBytes, freePercent: Math.round(disk.freePercent * 10) / 10 },
      update: update
        ? {
            step: update.step,
            installed: update.installed,
            ...(update.lastError ? { lastError: update.lastError } : {}),
          }
        : null,
    };
  };
}
