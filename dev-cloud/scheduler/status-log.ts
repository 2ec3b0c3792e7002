import { EventEmitter } from 'node:events';
import type { Logger } from '../../lib/logger.js';
import type { BridgeMessage, IotBridge } from '../iot/bridge.js';

/** The reload status events a fort publishes on `forts/<fortId>/status`. */
export const RELOAD_STATUS_TYPES = ['reload.started', 'reload.succeeded', 'reload.failed', 'reload.cancelled'] as const;

/** One status event as received. */
export interface ReloadStatusRecord {
  /** When the bridge received it (the cloud's clock), ISO 8601. */
  at: string;
  /** From the topic (a fort can only publish under its own `forts/<id>/`). */
  fortId: string;
  /** `reload.*`, as published. */
  type: string;
  /** `data.reloadId`, if the event carries one. */
  reloadId: string | null;
  /** `data.appId`, if the event carries one. */
  appId: string | null;
  /** The event's whole `data` object, as published. */
  data: Record<string, unknown>;
  /** The envelope's `id` and `ts` (the fort's clock). */
  eventId: string | null;
  ts: string | null;
}

export interface ReloadStatusFilter {
  fortId?: string;
  appId?: string;
  /** Only records received at or after this time. */
  since?: Date;
}

export interface ReloadStatusLog {
  /** Oldest first; at most `max` (default 1000): the oldest are dropped. */
  list(filter?: ReloadStatusFilter): ReloadStatusRecord[];
  /** Looks at one bridge publish; returns the record if it was a reload status event. */
  record(message: Pick<BridgeMessage, 'topic' | 'payload' | 'at'>): ReloadStatusRecord | undefined;
  /** `status` with each new record. */
  readonly events: EventEmitter<{ status: [ReloadStatusRecord] }>;
  /** The first record (already recorded, or to come) matching `predicate`; rejects after `timeoutMs`. */
  waitFor(predicate: (r: ReloadStatusRecord) => boolean, timeoutMs: number): Promise<ReloadStatusRecord>;
  /** Stops listening to the bridge (records stay readable). */
  close(): void;
}

export interface ReloadStatusLogOptions {
  /** Records the bridge's publishes from now on; absent = only what `record` is given. */
  bridge?: Pick<IotBridge, 'onPublish'>;
  /** Records kept (default 1000). */
  max?: number;
  log?: Logger;
}

const STATUS_TOPIC = /^forts\/([^/]+)\/status$/;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** The cloud's record of the reload status events forts report (dev routes, CLI, tests). */
export function createReloadStatusLog(opts: ReloadStatusLogOptions = {}): ReloadStatusLog {
  const max = opts.max ?? 1000;
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`max must be a positive integer, got ${max}`);
  const records: ReloadStatusRecord[] = [];
  const events = new EventEmitter<{ status: [ReloadStatusRecord] }>();
  events.setMaxListeners(0);

  function record(m: Pick<BridgeMessage, 'topic' | 'payload' | 'at'>): ReloadStatusRecord | undefined {
    const fortId = STATUS_TOPIC.exec(m.topic)?.[1];
    if (!fortId) return undefined;
    let event: unknown;
    try {
      event = JSON.parse(m.payload.toString('utf8'));
    } catch {
      return undefined;
    }
    if (!isObject(event) || typeof event.type !== 'string' || !event.type.startsWith('reload.')) return undefined;
    if (event.fortId !== undefined && event.fortId !== fortId) {
      opts.log?.warn({ topic: m.topic, fortId: event.fortId }, 'reload status event names another fort; ignored');
      return undefined;
    }
    const data = isObject(event.data) ? event.data : {};
    const r: ReloadStatusRecord = {
      at: m.at.toISOString(),
      fortId,
      type: event.type,
      reloadId: str(data.reloadId),
      appId: str(data.appId),
      data,
      eventId: str(event.id),
      ts: str(event.ts),
    };
    records.push(r);
    if (records.length > max) records.splice(0, records.length - max);
    events.emit('status', r);
    return r;
  }

  const unsubscribe = opts.bridge?.onPublish((m) => record(m));

  return {
    record,
    events,
    list(filter = {}) {
      const since = filter.since?.getTime();
      return records.filter(
        (r) =>
          (filter.fortId === undefined || r.fortId === filter.fortId) &&
          (filter.appId === undefined || r.appId === filter.appId) &&
          (since === undefined || Date.parse(r.at) >= since),
      );
    },
    waitFor(predicate, timeoutMs) {
      const found = records.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const onStatus = (r: ReloadStatusRecord) => {
          if (!predicate(r)) return;
          clearTimeout(timer);
          events.off('status', onStatus);
          resolve(r);
        };
        const timer = setTimeout(() => {
          events.off('status', onStatus);
          const seen = records.slice(-10).map((r) => `${r.fortId} ${r.type} ${r.appId ?? '-'} ${r.reloadId ?? '-'}`);
          reject(
            new Error(
              `no matching reload status event within ${timeoutMs} ms; last recorded: ${seen.length ? seen.join('; ') : 'none'}`,
            ),
          );
        }, timeoutMs);
        events.on('status', onStatus);
      });
    },
    close() {
      unsubscribe?.();
    },
  };
}
