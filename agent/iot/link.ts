import { EventEmitter } from 'node:events';
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import WebSocket from 'ws';
import { fullJitterDelay } from '../../lib/backoff.js';
import type { Logger } from '../../lib/logger.js';
import { describeProxy, proxyAgentFor, type ProxySettings } from '../../lib/proxy.js';
import type { InboundMessage } from '../events/inbox.js';
import type { CredentialSource } from './credentials.js';
import { createInboundBatcher } from './inbound-batch.js';
import { presignMqttUrl } from './presign.js';

export type LinkState = 'stopped' | 'connecting' | 'connected' | 'waiting';

/** `link.events`: event name → listener arguments, so a misspelt event or a wrong listener fails tsc. */
export interface LinkEvents {
  /** Every state change, `stopped` included. */
  state: [state: LinkState];
  /** Subscribed: the link can publish. */
  connected: [];
  /** A connection that got subscribed has closed. */
  disconnected: [];
}

export interface LinkOptions {
  /** host[:port] of the IoT data endpoint */
  endpoint: string;
  region: string;
  fortId: string;
  /** MQTT client id; AWS kicks an older connection with the same id. */
  thingName: string;
  /** CA bundle for the endpoint's server certificate; undefined = system roots. */
  ca?: Buffer;
  keepaliveSeconds: number;
  protocolVersion: 4 | 5;
  backoff: { baseMs: number; capMs: number };
  credentials: CredentialSource;
  /** HTTP proxy to tunnel through (CONNECT), unless its no_proxy list exempts the endpoint. */
  proxy?: ProxySettings;
  /**
   * Commits inbound messages (one or several that arrived together) before their PUBACKs;
   * synchronous so the caller can commit first. Throwing withholds the PUBACKs and drops the
   * connection, so the broker redelivers.
   */
  onMessages: (messages: InboundMessage[]) => void;
  log: Logger;
  now?: () => number;
  random?: () => number;
}

/** AWS allows one CONNECT per second per client id. */
const MIN_CONNECT_SPACING_MS = 1000;

/**
 * MQTT over WSS to AWS IoT (or the dev bridge), with our own reconnect loop: mqtt.js's own
 * reconnect is a fixed period without backoff and cannot presign asynchronously. Each
 * attempt fetches credentials (refreshing near expiry), presigns a fresh URL and opens a new
 * client with a persistent session (clean: false).
 */
export function createMqttLink(opts: LinkOptions) {
  const now = opts.now ?? Date.now;
  const events = new EventEmitter<LinkEvents>();
  const topics = { events: `forts/${opts.fortId}/events`, presence: `forts/${opts.fortId}/presence` };
  let state: LinkState = 'stopped';
  let client: MqttClient | undefined;
  let stopped = true;
  let attempt = 0;
  /** The last delivery could not be committed (a full disk): reconnects back off until one is. */
  let storeFailing = false;
  let lastAttemptAt = -Infinity;
  let wakeUp: (() => void) | undefined;
  // mqtt.js keeps unacked QoS 1 publishes for its own reconnect and never settles them when
  // a client is discarded; we fail them ourselves so the outbox retries on the next link.
  const pendingPublishes = new Set<(err: Error) => void>();
  // One agent for the link's lifetime; TLS to the bridge runs inside the tunnel, verified as usual.
  const agent =
    opts.proxy && proxyAgentFor(new URL(`wss://${opts.endpoint}/mqtt`), opts.proxy, opts.ca ? { ca: opts.ca } : {});
  if (agent && opts.proxy) opts.log.info(describeProxy(opts.proxy), 'IoT link goes through the HTTP proxy');
  const stats = {
    connectAttempts: 0,
    connects: 0,
    lastConnectAt: undefined as string | undefined,
    lastError: undefined as string | undefined,
    lastDisconnect: undefined as string | undefined,
  };

  const setState = (s: LinkState) => {
    state = s;
    events.emit('state', s);
  };

  const presence = (online: boolean) =>
    JSON.stringify({
      v: 1,
      type: online ? 'presence.online' : 'presence.offline',
      fortId: opts.fortId,
      ts: new Date(now()).toISOString(),
    });

  /** One connection: resolves when it ends, with whether it ever got subscribed. */
  const session = async (): Promise<boolean> => {
    const credentials = await opts.credentials.get();
    const url = await presignMqttUrl({ endpoint: opts.endpoint, region: opts.region, credentials });
    const inbound = createInboundBatcher({ protocolVersion: opts.protocolVersion, commit: opts.onMessages });
    const options: IClientOptions = {
      protocolVersion: opts.protocolVersion,
      clientId: opts.thingName,
      clean: false,
      reconnectPeriod: 0,
      keepalive: opts.keepaliveSeconds,
      connectTimeout: 15_000,
      resubscribe: false,
      // mqtt-packet otherwise keeps a 2-byte Buffer for each of the 65 536 packet ids: ~6 MB of heap.
      writeCache: false,
      will: { topic: topics.presence, payload: Buffer.from(presence(false)), qos: 1, retain: false },
      ...(opts.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 3600 } } : {}),
      // Our own socket: the presigned URL carries the signature, and mqtt.js swallows upgrade
      // failures (a 403 from a refused signature) that we need to see.
      createWebsocket: (_url: string, protocols: string[]) => {
        const ws = new WebSocket(url, protocols, { ...(opts.ca ? { ca: opts.ca } : {}), ...(agent ? { agent } : {}) });
        ws.on('error', (err) => {
          upgradeError = err.message;
        });
        inbound.read(ws);
        return ws;
      },
    };
    let upgradeError: string | undefined;
    return new Promise<boolean>((resolve) => {
      let subscribed = false;
      const c = mqtt.connect(`wss://${opts.endpoint}/mqtt`, options);
      client = c;
      c.handleMessage = (packet, done) => {
        inbound.settle(packet, (err) => {
          if (!err) {
            if (storeFailing) {
              storeFailing = false;
              attempt = 0;
              opts.log.info('inbound messages committed again');
            }
            return done();
          }
          storeFailing = true;
          opts.log.error(
            { err, topic: packet.topic },
            'inbound message not committed; dropping the connection so it is redelivered',
          );
          done(err);
          c.end(true);
        });
      };
      c.on('connect', (connack) => {
        stats.connects += 1;
        stats.lastConnectAt = new Date(now()).toISOString();
        opts.log.info({ sessionPresent: connack.sessionPresent }, 'IoT link connected');
        c.subscribe(topics.events, { qos: 1 }, (err) => {
          if (err) {
            stats.lastError = `subscribe failed: ${err.message}`;
            opts.log.warn({ err: err.message }, 'subscribe failed');
            c.end(true);
            return;
          }
          subscribed = true;
          if (!storeFailing) attempt = 0;
          setState('connected');
          events.emit('connected');
          c.publish(topics.presence, presence(true), { qos: 1 }, () => {});
        });
      });
      c.on('disconnect', (packet) => {
        // MQTT 5 server DISCONNECT: e.g. 0x8E session taken over (duplicate client id).
        stats.lastDisconnect = `server disconnect, reason code ${packet.reasonCode ?? 'n/a'}`;
        opts.log.warn({ reasonCode: packet.reasonCode }, 'IoT link: server sent DISCONNECT');
      });
      c.on('error', (err) => {
        stats.lastError = err.message;
        opts.log.warn({ err: err.message }, 'IoT link error');
      });
      c.on('close', () => {
        for (const fail of pendingPublishes) fail(new Error('IoT link closed before PUBACK'));
        pendingPublishes.clear();
        if (subscribed) {
          stats.lastDisconnect ??= 'connection closed';
          opts.log.warn({ reason: stats.lastDisconnect }, 'IoT link disconnected');
          events.emit('disconnected');
        } else {
          stats.lastError = upgradeError ?? stats.lastError ?? 'connection closed before subscribe';
          // A refused upgrade may mean the bridge no longer knows our temporary keys.
          if (upgradeError && /\b40[13]\b/.test(upgradeError)) opts.credentials.invalidate();
        }
        // The error listener stays: mqtt.js may still report why the stream ended.
        c.removeAllListeners('close');
        c.removeAllListeners('connect');
        c.end(true);
        if (client === c) client = undefined;
        resolve(subscribed);
      });
    });
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });

  const loop = async () => {
    while (!stopped) {
      // Monotonic: a host clock set back an hour must not hold the link down for an hour.
      const spacing = lastAttemptAt + MIN_CONNECT_SPACING_MS - performance.now();
      if (spacing > 0) await sleep(spacing);
      if (stopped) break;
      lastAttemptAt = performance.now();
      stats.connectAttempts += 1;
      stats.lastDisconnect = undefined;
      setState('connecting');
      let wasUp = false;
      try {
        wasUp = await session();
      } catch (err) {
        stats.lastError = (err as Error).message;
        opts.log.warn({ err: (err as Error).message }, 'IoT link: cannot connect');
      }
      if (stopped) break;
      // After a connection that was up, retry at once (spacing still applies); else back off, and
      // also while the store cannot commit: each reconnect only brings the same delivery again.
      const delay = wasUp && !storeFailing ? 0 : fullJitterDelay(attempt++, opts.backoff, opts.random);
      setState('waiting');
      if (delay > 0) {
        opts.log.info({ delayMs: delay, attempt }, 'IoT link: reconnecting after backoff');
        await sleep(delay);
      }
    }
    setState('stopped');
  };

  return {
    events,
    get state() {
      return state;
    },
    stats: () => ({ state, ...stats }),
    start() {
      if (!stopped) return;
      stopped = false;
      void loop();
    },
    /** QoS 1 publish; resolves on PUBACK, rejects when not connected or the connection drops first. */
    publish(topic: string, payload: Buffer | string): Promise<void> {
      const c = client;
      if (!c || state !== 'connected') return Promise.reject(new Error('IoT link not connected'));
      return new Promise((resolve, reject) => {
        pendingPublishes.add(reject);
        c.publish(topic, payload, { qos: 1 }, (err) => {
          pendingPublishes.delete(reject);
          if (err) reject(err);
          else resolve();
        });
      });
    },
    async stop() {
      stopped = true;
      wakeUp?.();
      const c = client;
      if (!c) return;
      // Bounded: a half-dead connection must not hold up the process stop.
      const bounded = (p: Promise<void>) => Promise.race([p, new Promise<void>((r) => setTimeout(r, 2000).unref())]);
      if (state === 'connected')
        await bounded(
          new Promise<void>((resolve) => c.publish(topics.presence, presence(false), { qos: 1 }, () => resolve())),
        );
      await bounded(new Promise<void>((resolve) => c.end(false, {}, () => resolve())));
    },
  };
}
export type MqttLink = ReturnType<typeof createMqttLink>;
