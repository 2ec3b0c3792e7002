import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Cron } from 'croner';
import type { Logger } from '../../lib/logger.js';
import type { IotBridge } from '../iot/bridge.js';

/** One configured schedule (`[[scheduler.schedules]]`). */
export interface ReloadSchedule {
  /** Sent as `data.scheduleId`; default `schedule-<n>` (n from 1, in list order). */
  id?: string;
  fort: string;
  app: string;
  /** croner pattern: 5 fields, or 6 with seconds first. */
  cron: string;
}

/** The v1 envelope the cloud publishes on `forts/<fortId>/events` to ask for a reload. */
export interface ReloadRequestedEvent {
  v: 1;
  id: string;
  type: 'reload.requested';
  fortId: string;
  ts: string;
  data: { appId: string; scheduleId?: string; requestedBy: 'schedule' };
}

export interface ScheduledJob {
  id: string;
  fort: string;
  app: string;
  cron: string;
  /** When it fires next (null once stopped). */
  nextRun(): Date | null;
}

export interface ReloadScheduler {
  readonly jobs: readonly ScheduledJob[];
  /** Publishes a `reload.requested` now (no `scheduleId`); resolves once the broker took it. */
  trigger(fort: string, app: string): Promise<ReloadRequestedEvent>;
  /** Fires one configured schedule now, as its cron would. */
  fire(scheduleId: string): Promise<ReloadRequestedEvent>;
  /** `published` (event) after each publish, `error` (err, schedule) when a scheduled publish fails. */
  readonly events: EventEmitter<{ published: [ReloadRequestedEvent]; error: [Error, ScheduledJob] }>;
  /** Stops every job; `trigger` still works (the dev route stays usable until the bridge closes). */
  stop(): void;
}

export interface ReloadSchedulerOptions {
  schedules: readonly ReloadSchedule[];
  bridge: Pick<IotBridge, 'publish'>;
  /** The cloud's clock (for `ts`); firing times follow the real clock. */
  now?: () => Date;
  log: Logger;
}

export const reloadEventsTopic = (fortId: string) => `forts/${fortId}/events`;

/**
 * The cloud side of scheduled reloads: the cloud decides when, the fort does the work and
 * reports `reload.*` status events (recorded by the status log). Patterns are validated by
 * the config schema; a bad one passed here throws at start.
 */
export function startReloadScheduler(opts: ReloadSchedulerOptions): ReloadScheduler {
  const now = opts.now ?? (() => new Date());
  const events = new EventEmitter<{ published: [ReloadRequestedEvent]; error: [Error, ScheduledJob] }>();
  // No listener must not mean a crash: failures are logged anyway.
  events.on('error', () => {});

  async function publish(fort: string, app: string, scheduleId?: string): Promise<ReloadRequestedEvent> {
    const event: ReloadRequestedEvent = {
      v: 1,
      id: randomUUID(),
      type: 'reload.requested',
      fortId: fort,
      ts: now().toISOString(),
      data: { appId: app, ...(scheduleId !== undefined ? { scheduleId } : {}), requestedBy: 'schedule' },
    };
    await opts.bridge.publish(reloadEventsTopic(fort), JSON.stringify(event));
    opts.log.info({ fortId: fort, appId: app, scheduleId, eventId: event.id }, 'reload.requested published');
    events.emit('published', event);
    return event;
  }

  const crons: Cron[] = [];
  const jobs: ScheduledJob[] = [];
  const byId = new Map<string, ScheduledJob>();
  try {
    opts.schedules.forEach((s, i) => {
      const id = s.id ?? `schedule-${i + 1}`;
      if (byId.has(id)) throw new Error(`duplicate schedule id ${id}`);
      const job: ScheduledJob = { id, fort: s.fort, app: s.app, cron: s.cron, nextRun: () => cron.nextRun() };
      const cron: Cron = new Cron(s.cron, { name: `reload:${id}`, protect: true }, async () => {
        try {
          await publish(s.fort, s.app, id);
        } catch (err) {
          opts.log.error(
            { err, scheduleId: id, fortId: s.fort, appId: s.app },
            'scheduled reload.requested not published',
          );
          events.emit('error', err as Error, job);
        }
      });
      crons.push(cron);
      jobs.push(job);
      byId.set(id, job);
    });
  } catch (err) {
    for (const c of crons) c.stop();
    throw err;
  }
  if (jobs.length)
    opts.log.info(
      { schedules: jobs.map((j) => ({ id: j.id, fort: j.fort, app: j.app, cron: j.cron })) },
      'reload scheduler started',
    );

  return {
    jobs,
    events,
    trigger: (fort, app) => publish(fort, app),
    fire(scheduleId) {
      const job = byId.get(scheduleId);
      if (!job) return Promise.reject(new Error(`no schedule ${scheduleId}`));
      return publish(job.fort, job.app, job.id);
    },
    stop() {
      for (const c of crons) c.stop();
    },
  };
}
