import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import mqttPacket from 'mqtt-packet';
import type WebSocket from 'ws';
import { createInboundBatcher } from '../../../../agent/iot/inbound-batch.js';
import type { InboundMessage } from '../../../../agent/events/inbox.js';

const TOPIC = 'forts/f1/events';
const publish = (messageId: number, body: string, qos: 0 | 1 = 1) => ({
  cmd: 'publish' as const,
  topic: TOPIC,
  payload: Buffer.from(body),
  qos,
  dup: false,
  retain: false,
  messageId,
});
const frame = (packet: object) => mqttPacket.generate(packet as mqttPacket.Packet);

/** A socket stand-in: the batcher only listens to 'message' frames. */
function rig(commitImpl?: (m: InboundMessage[]) => void) {
  const ws = new EventEmitter();
  const log: string[] = [];
  const batcher = createInboundBatcher({
    protocolVersion: 4,
    commit: (messages) => {
      commitImpl?.(messages);
      log.push(`commit ${messages.map((m) => m.payload.toString()).join(',')}`);
    },
  });
  batcher.read(ws as unknown as WebSocket);
  const settle = (p: ReturnType<typeof publish>) =>
    new Promise<void>((resolve, reject) =>
      batcher.settle(p, (err) => {
        if (err) return reject(err);
        log.push(`ack ${p.messageId}`);
        resolve();
      }),
    );
  return { ws, log, settle };
}

describe('inbound group commit', () => {
  it('commits every PUBLISH already on the wire with the first, each ack after the commit', async () => {
    const { ws, log, settle } = rig();
    const packets = [publish(1, 'a'), publish(2, 'b'), publish(3, 'c')];
    ws.emit('message', frame({ cmd: 'suback', messageId: 9, granted: [1] }));
    for (const p of packets) ws.emit('message', frame(p));
    for (const p of packets) await settle(p);
    expect(log).toEqual(['commit a,b,c', 'ack 1', 'ack 2', 'ack 3']);
  });

  it('groups what arrives while the first commit waits, and parses a packet split over frames', async () => {
    const { ws, log, settle } = rig();
    ws.emit('message', frame(publish(1, 'a')));
    const first = settle(publish(1, 'a'));
    const bytes = frame(publish(2, 'bb'));
    ws.emit('message', bytes.subarray(0, 5));
    ws.emit('message', bytes.subarray(5));
    await first;
    await settle(publish(2, 'bb'));
    ws.emit('message', frame(publish(3, 'c')));
    await settle(publish(3, 'c'));
    expect(log).toEqual(['commit a,bb', 'ack 1', 'ack 2', 'commit c', 'ack 3']);
  });

  it('falls back to one commit per message when its view and mqtt.js disagree', async () => {
    const { ws, log, settle } = rig();
    ws.emit('message', frame(publish(1, 'a')));
    ws.emit('message', frame(publish(2, 'b')));
    await settle(publish(7, 'x'));
    ws.emit('message', frame(publish(3, 'c')));
    await settle(publish(3, 'c'));
    expect(log).toEqual(['commit x', 'ack 7', 'commit c', 'ack 3']);
  });

  it('reports a failed commit without acking, and acks nothing of that group later', async () => {
    let fail = true;
    const { ws, log, settle } = rig(() => {
      if (fail) throw new Error('disk full');
    });
    ws.emit('message', frame(publish(1, 'a')));
    ws.emit('message', frame(publish(2, 'b')));
    await expect(settle(publish(1, 'a'))).rejects.toThrow('disk full');
    fail = false;
    // Were the connection to go on, b must be committed itself, not acked as part of a's group.
    await settle(publish(2, 'b'));
    expect(log).toEqual(['commit b', 'ack 2']);
  });

  it('stops grouping after a parse error instead of acking on a wrong view', async () => {
    const { ws, log, settle } = rig();
    ws.emit('message', Buffer.from([0xf0, 0x00])); // reserved packet type 15
    ws.emit('message', frame(publish(1, 'a')));
    await settle(publish(1, 'a'));
    expect(log).toEqual(['commit a', 'ack 1']);
  });
});
