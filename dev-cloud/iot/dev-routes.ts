import { randomUUID } from 'node:crypto';
import type { DevCloudServer } from '../server.js';
import type { IotBridge } from './bridge.js';

/**
 * Developer-only routes on the dev cloud API: publish an event to a fort and read what forts
 * published. A real cloud does this from its scheduler and backend.
 */
export function registerDevIotRoutes(app: DevCloudServer, bridge: IotBridge) {
  app.post<{ Body: { fortId: string; type: string; data?: Record<string, unknown>; raw?: string } }>(
    '/dev/iot/publish',
    async (req) => {
      const { fortId, type, data, raw } = req.body;
      const event = { v: 1, id: randomUUID(), type, fortId, ts: new Date().toISOString(), data: data ?? {} };
      await bridge.publish(`forts/${fortId}/events`, raw ?? JSON.stringify(event));
      return raw === undefined ? { published: event } : { published: 'raw' };
    },
  );
  app.get<{ Querystring: { topic: string; since?: string } }>('/dev/iot/messages', async (req) => {
    const since = Number(req.query.since ?? 0);
    return bridge.messages
      .map((m, seq) => ({
        seq,
        topic: m.topic,
        clientId: m.clientId,
        at: m.at.toISOString(),
        payload: m.payload.toString('utf8'),
      }))
      .filter((m) => m.seq >= since && m.topic === req.query.topic);
  });
  /** The `fort` named shadows forts reported, by thing (`npm run dev-cloud -- forts --status`). */
  app.get('/dev/v1/shadows', async () => ({ shadows: bridge.shadows.list() }));
}
