import { z } from 'zod';
import { FortError } from '../../lib/errors.js';
import { identifier } from '../../lib/config/fields.js';
import { NotFoundError } from '../apps/errors.js';
import type { EventHandler } from '../events/inbox.js';
import type { ReloadQueue } from './queue.js';
import type { ReloadStatusSink } from './status.js';

const requested = z.object({ appId: identifier() });
const cancel = z.union([z.object({ reloadId: z.uuid() }), z.object({ appId: identifier() })]);

function dataOf<T>(schema: z.ZodType<T>, data: unknown, type: string): T {
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw new FortError('FORT_ERR_BAD_REQUEST', `${type}: data.${issue.path.join('.') || '(root)'}: ${issue.message}`, {
    fatal: false,
  });
}

/**
 * Cancels by reload or app id (inside the caller's transaction): queued reloads end at once and
 * are reported; running ones are returned, for the executor to abort after the commit.
 */
export function cancelReloads(
  queue: ReloadQueue,
  status: ReloadStatusSink,
  target: { reloadId: string } | { appId: string },
  extra: Record<string, unknown> = {},
) {
  const c = queue.cancel(target);
  for (const r of c.cancelled)
    status.emit('reload.cancelled', {
      reloadId: r.id,
      appId: r.appId,
      ...extra,
      code: r.errorCode,
      message: r.errorMessage,
    });
  return c;
}

/**
 * The cloud's reload events. They run inside the inbox transaction, so the queued reload (or
 * the recorded cancel) commits with the event's dedupe row: a redelivered event never queues
 * twice. The executor is told after the commit (`afterCommit`).
 */
export function reloadEventHandlers(deps: {
  queue: ReloadQueue;
  status: ReloadStatusSink;
  afterCommit: (what: { kick?: true; abort?: string[] }) => void;
}): Map<string, EventHandler> {
  return new Map<string, EventHandler>([
    [
      'reload.requested',
      (event) => {
        const { appId } = dataOf(requested, event.data, event.type);
        try {
          deps.queue.request(appId, `event:${event.id}`);
        } catch (err) {
          if (!(err instanceof NotFoundError)) throw err;
          // A valid request for an app this fort does not have: the cloud hears why, nothing is queued.
          deps.status.emit('reload.failed', {
            appId,
            eventId: event.id,
            code: 'FORT_ERR_NOT_FOUND',
            message: err.message,
          });
          return;
        }
        deps.afterCommit({ kick: true });
      },
    ],
    [
      'reload.cancel',
      (event) => {
        const target = dataOf(cancel, event.data, event.type);
        const { cancelling } = cancelReloads(deps.queue, deps.status, target, { eventId: event.id });
        deps.afterCommit({ abort: cancelling.map((r) => r.id) });
      },
    ],
  ]);
}
