import type { BridgeMessage } from '../../dev-cloud/iot/bridge.js';

interface Bridge {
  publish(topic: string, payload: string): Promise<void>;
  onPublish(listener: (m: BridgeMessage) => void): () => void;
}

/**
 * Ping events at a steady rate through the bridge (QoS 1, queued by the broker while the fort is
 * away), and the pongs the fort answers with. Each run of the ping handler makes a pong with a
 * new id, while a pong the outbox sends again keeps its id: two pong ids for one ping means the
 * event was applied twice, no pong means it was lost.
 */
export function createEventDriver(o: { bridge: Bridge; fortId: string; perSecond: number; newId: () => string }) {
  const sent = new Set<string>();
  const pongIds = new Map<string, Set<string>>();
  let publishFailures = 0;
  let timer: NodeJS.Timeout | undefined;
  const off = o.bridge.onPublish((m) => {
    if (m.topic !== `forts/${o.fortId}/status`) return;
    const pong = JSON.parse(m.payload.toString()) as { id: string; type: string; data: { pingId?: string } };
    if (pong.type !== 'pong' || !pong.data.pingId) return;
    const ids = pongIds.get(pong.data.pingId) ?? new Set<string>();
    ids.add(pong.id);
    pongIds.set(pong.data.pingId, ids);
  });
  const send = () => {
    const id = o.newId();
    const event = { v: 1, id, type: 'ping', fortId: o.fortId, ts: new Date().toISOString(), data: {} };
    // Counted as sent once the broker took it: the fort's delivery guarantee starts there.
    o.bridge.publish(`forts/${o.fortId}/events`, JSON.stringify(event)).then(
      () => sent.add(id),
      () => (publishFailures += 1),
    );
  };
  return {
    start() {
      timer = setInterval(send, 1000 / o.perSecond);
    },
    stop() {
      clearInterval(timer);
    },
    close: () => off(),
    unanswered: () => [...sent].filter((id) => !pongIds.has(id)).length,
    counts() {
      const handled = [...sent].filter((id) => pongIds.has(id)).length;
      return {
        sent: sent.size,
        handled,
        lost: sent.size - handled,
        duplicatesApplied: [...pongIds.values()].filter((ids) => ids.size > 1).length,
        notSentBrokerRefused: publishFailures,
      };
    },
  };
}
