import type { Logger } from '../../lib/logger.js';
import { createEvent, statusTopic } from '../events/envelope.js';
import type { Outbox } from '../events/outbox.js';

export type ReloadStatusType = 'reload.started' | 'reload.succeeded' | 'reload.failed' | 'reload.cancelled';

/**
 * Where reload status goes: the outbox (same transaction as the state change it reports, so
 * the cloud hears of every transition exactly as it was committed) when the IoT link is
 * configured, the log only otherwise. Status carries ids, counts, durations and error codes,
 * never a data value: customer data does not leave the fort.
 */
export interface ReloadStatusSink {
  emit(type: ReloadStatusType, data: Record<string, unknown>): void;
}

export function reloadStatusSink(opts: {
  fortId: string;
  outbox?: Outbox | undefined;
  log: Logger;
  now?: () => Date;
}): ReloadStatusSink {
  const now = opts.now ?? (() => new Date());
  return {
    emit(type, data) {
      opts.log.info({ status: type, ...data }, 'reload status');
      opts.outbox?.enqueue(statusTopic(opts.fortId), createEvent(opts.fortId, type, data, now()));
    },
  };
}
