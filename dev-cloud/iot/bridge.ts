import { createServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { Aedes, type Client } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from '../../lib/logger.js';
import type { TlsMaterial } from '../../lib/tls.js';
import type { CredentialStore } from './credential-store.js';
import { verifyPresignedUrl } from './sigv4-verify.js';

import { createShadowStore, MAX_SHADOW_BYTES, SHADOW_UPDATE } from './shadows.js';

export const MAX_PAYLOAD_BYTES = 128 * 1024;

export interface BridgeOptions {
  host: string;
  port: number;
  tls: TlsMaterial;
  region: string;
  store: CredentialStore;
  /** AWS closes SigV4 connections after 24 h; shorter in tests. */
  maxConnectionSeconds: number;
  log: Logger;
  now?: () => Date;
}

export interface BridgeMessage {
  topic: string;
  payload: Buffer;
  clientId: string | null;
  at: Date;
}

/**
 * Local AWS IoT Core stand-in: MQTT over WSS (subprotocol `mqtt`) whose upgrade is allowed
 * only for a valid SigV4-presigned URL, with the AWS rules agents must live with: a second
 * connection with the same client id kicks the first, 128 KB payloads, limited connection
 * lifetime, things only touch their own `forts/<thing>/` topics and their own `fort` named shadow (8 KB).
 */
export async function startIotBridge(opts: BridgeOptions) {
  const now = opts.now ?? (() => new Date());
  const broker = await Aedes.createBroker({ maxClientsIdLength: 128, keepaliveLimit: 1200 });
  const sockets = new Set<Duplex>();
  const lifetimers = new Map<Client, NodeJS.Timeout>();
  const stats = { upgradesAccepted: 0, upgradesRejected: 0, lastRejection: '' };
  const messages: BridgeMessage[] = [];

  const ownTopic = (client: Client | null, topic: string) => !client || topic.startsWith(`forts/${client.id}/`);
  const shadows = createShadowStore(now);
  /** The thing whose `fort` shadow this publish updates, when it is its own. */
  const ownShadow = (client: Client | null, topic: string) => {
    const thing = SHADOW_UPDATE.exec(topic)?.[1];
    return client && thing === client.id ? thing : undefined;
  };
  broker.authorizePublish = (client, packet, done) => {
    if (packet.payload.length > MAX_PAYLOAD_BYTES)
      return done(new Error(`payload ${packet.payload.length} bytes exceeds 128 KB`));
    if (ownShadow(client, packet.topic))
      return done(
        packet.payload.length > MAX_SHADOW_BYTES
          ? new Error(`shadow document ${packet.payload.length} bytes exceeds 8 KB`)
          : null,
      );
    done(ownTopic(client, packet.topic) ? null : new Error(`not authorised for ${packet.topic}`));
  };
  broker.authorizeSubscribe = (client, sub, done) =>
    done(ownTopic(client, sub.topic) ? null : new Error(`not authorised for ${sub.topic}`), sub);
  const publishListeners = new Set<(m: BridgeMessage) => void>();
  broker.on('publish', (packet, client) => {
    if (packet.topic.startsWith('$SYS')) return;
    const thing = ownShadow(client, packet.topic);
    if (thing) {
      const stored = shadows.update(thing, Buffer.from(packet.payload));
      if ('rejected' in stored) opts.log.warn({ thing, why: stored.rejected }, 'shadow update rejected');
    }
    const m: BridgeMessage = {
      topic: packet.topic,
      payload: Buffer.from(packet.payload),
      clientId: client?.id ?? null,
      at: now(),
    };
    messages.push(m);
    for (const l of publishListeners) {
      try {
        l(m);
      } catch (err) {
        opts.log.error({ err, topic: m.topic }, 'publish listener failed');
      }
    }
  });
  broker.on('client', (client) => {
    const timer = setTimeout(() => {
      opts.log.info({ clientId: client.id }, 'connection lifetime reached; disconnecting');
      client.close();
    }, opts.maxConnectionSeconds * 1000);
    timer.unref();
    lifetimers.set(client, timer);
  });
  broker.on('clientDisconnect', (client) => {
    clearTimeout(lifetimers.get(client));
    lifetimers.delete(client);
  });

  const server = createServer({ key: opts.tls.key, cert: opts.tls.cert });
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false),
  });
  server.on('upgrade', (req, socket, head) => {
    const verdict = verifyPresignedUrl({
      url: req.url ?? '',
      host: req.headers.host ?? '',
      headers: req.headers,
      region: opts.region,
      now: now(),
      lookupSecret: (akid) => opts.store.lookup(akid),
    });
    if (!verdict.ok) {
      stats.upgradesRejected += 1;
      stats.lastRejection = verdict.reason;
      opts.log.warn({ reason: verdict.reason }, 'websocket upgrade refused');
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nForbidden\n');
      return;
    }
    stats.upgradesAccepted += 1;
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws);
      sockets.add(stream);
      stream.on('close', () => sockets.delete(stream));
      stream.on('error', () => sockets.delete(stream));
      broker.handle(stream, req);
    });
  });
  server.on('request', (_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket only\n');
  });
  await new Promise<void>((resolve) => server.listen(opts.port, opts.host, resolve));

  return {
    broker,
    stats,
    /** The `fort` named shadows forts reported (`npm run dev-cloud -- forts --status`). */
    shadows,
    /** Every publish the broker saw (tests, and the dev CLI's status watch). */
    messages,
    /** Calls `listener` with every publish as it is recorded in `messages`; returns the unsubscribe. */
    onPublish(listener: (m: BridgeMessage) => void): () => void {
      publishListeners.add(listener);
      return () => {
        publishListeners.delete(listener);
      };
    },
    publish(topic: string, payload: Buffer | string): Promise<void> {
      return new Promise((resolve, reject) =>
        broker.publish(
          { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false },
          (err) => (err ? reject(err) : resolve()),
        ),
      );
    },
    connectedClients: () => broker.connectedClients,
    /** Cut every live connection without a DISCONNECT, as a network drop would. */
    /** Closes the connection of one client id, if connected (a revoked fort). */
    disconnect(clientId: string): boolean {
      const c = (broker as unknown as { clients: Record<string, { close(): void } | undefined> }).clients[clientId];
      c?.close();
      return c !== undefined;
    },
    dropConnections() {
      for (const s of sockets) s.destroy();
    },
    async close() {
      for (const t of lifetimers.values()) clearTimeout(t);
      for (const s of sockets) s.destroy();
      wss.close();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
export type IotBridge = Awaited<ReturnType<typeof startIotBridge>>;
