import { createEvent, statusTopic } from '../envelope.js';
import type { EventHandler } from '../inbox.js';

/**
 * `ping` → `pong` on the status topic: lets the cloud check the whole round trip
 * (bridge, inbox, outbox, publisher) of one fort. `echo` is returned as given.
 */
export function pingHandler(fortId: string, now: () => Date = () => new Date()): EventHandler {
  return (event, { outbox }) => {
    const data: Record<string, unknown> = { pingId: event.id };
    if (event.data.echo !== undefined) data.echo = event.data.echo;
    outbox.enqueue(statusTopic(fortId), createEvent(fortId, 'pong', data, now()));
  };
}
