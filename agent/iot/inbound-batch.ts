import mqttPacket from 'mqtt-packet';
import type WebSocket from 'ws';
import type { InboundMessage } from '../events/inbox.js';

/**
 * Group commit for inbound PUBLISHes, one per connection.
 *
 * mqtt.js hands over one PUBLISH at a time and parses the next only after the previous
 * PUBACK, so committing each on its own costs one fsync per event. This reader sees the same
 * WebSocket frames first (its listener is registered before mqtt.js's) and parses them with
 * its own mqtt-packet parser. When mqtt.js then asks for the first PUBLISH, every PUBLISH that
 * has already arrived is committed with it in one transaction; the later ones are then acked
 * without touching the store. Each PUBACK still follows the commit of its own message.
 *
 * If the two views ever disagree (a parse error, an unexpected packet id) the queue is
 * dropped and messages are committed one by one again: a re-commit is a duplicate to the
 * inbox, never a second effect.
 */
export function createInboundBatcher(opts: { protocolVersion: 4 | 5; commit: (messages: InboundMessage[]) => void }) {
  const queue: (InboundMessage & { messageId: number | undefined })[] = [];
  // The queue's first `committed` entries are in the store and only wait for mqtt.js.
  let committed = 0;
  let broken = false;
  const parser = mqttPacket.parser({ protocolVersion: opts.protocolVersion });
  parser.on('packet', (packet) => {
    if (packet.cmd !== 'publish') return;
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    queue.push({ topic: packet.topic, payload, messageId: packet.messageId });
  });
  parser.on('error', () => giveUp());

  /** The head is committed: hand it back to mqtt.js for its PUBACK. */
  function done(callback: (err?: Error) => void) {
    queue.shift();
    committed -= 1;
    callback();
  }

  function attempt(commit: () => void, callback: (err?: Error) => void) {
    try {
      commit();
    } catch (err) {
      giveUp();
      return callback(err as Error);
    }
    callback();
  }

  function giveUp() {
    broken = true;
    queue.length = 0;
    committed = 0;
  }

  return {
    /** Call on the socket before mqtt.js wraps it, so this listener runs first. */
    read(ws: WebSocket): void {
      ws.on('message', (data) => {
        if (broken) return;
        parser.parse(Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data));
      });
    },
    /**
     * Commits `packet` (and whatever arrived behind it), then calls back; with an error when
     * the store failed. The first commit waits one turn of the event loop: mqtt.js reads no
     * further packet meanwhile, but the WebSocket frames already received reach this reader,
     * and they form the group.
     */
    settle(
      packet: { topic: string; payload: Buffer | string; messageId?: number | undefined },
      callback: (err?: Error) => void,
    ): void {
      const head = queue[0];
      if (!head || head.messageId !== packet.messageId || head.topic !== packet.topic) {
        if (head) giveUp();
        const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
        return attempt(() => opts.commit([{ topic: packet.topic, payload }]), callback);
      }
      if (committed > 0) return done(callback);
      setImmediate(() => {
        // A parse error meanwhile emptied the queue: this one alone, then.
        if (queue[0] !== head)
          return attempt(() => opts.commit([{ topic: head.topic, payload: head.payload }]), callback);
        attempt(
          () => {
            opts.commit(queue.map(({ topic, payload }) => ({ topic, payload })));
            committed = queue.length;
          },
          (err) => (err ? callback(err) : done(callback)),
        );
      });
    },
  };
}
