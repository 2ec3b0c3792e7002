import { createDedupCutoff } from '../events/dedup-cutoff.js';
import type Database from 'better-sqlite3';
import type { Logger } from '../../lib/logger.js';
import type { ProxySettings } from '../../lib/proxy.js';
import { loadTlsMaterial } from '../../lib/tls.js';
import { readFileSync } from 'node:fs';
import type { HealthRegistry } from '../health.js';
import type { ClockHealth } from '../clock-health.js';
import { createInbox, type EventHandler } from '../events/inbox.js';
import { createOutbox, type Outbox } from '../events/outbox.js';
import { createOutboxPublisher } from '../events/publisher.js';
import { createShadowReporter } from '../shadow/reporter.js';
import { pingHandler } from '../events/handlers/ping.js';
import type { IotConfig } from './config.js';
import { credentialsProvider, staticCredentials, type CredentialSource } from './credentials.js';
import { createMqttLink } from './link.js';

/**
 * The cloud → fort event path: credentials → SigV4 link → inbox (exactly-once effect) and the
 * fort → cloud status path: outbox → rate-limited publisher → link.
 */
export function startIotService(deps: {
  config: IotConfig;
  fortId: string;
  db: Database.Database;
  /** Shared with the modules that report status (reloads); one is made when absent. */
  outbox?: Outbox;
  /** Event handlers beyond `ping`, by event type (e.g. the reloads'). */
  handlers?: ReadonlyMap<string, EventHandler>;
  health: HealthRegistry;
  clock: ClockHealth;
  log: Logger;
  proxy?: ProxySettings | undefined;
  /** The state the fort reports in its `fort` named shadow (agent/shadow); absent = none. */
  reportedState?: () => Promise<Record<string, unknown>>;
}) {
  const { config, log } = deps;
  const thingName = config.thing_name ?? deps.fortId;
  const credentials: CredentialSource =
    config.credentials.source === 'static'
      ? staticCredentials(config.credentials.file)
      : credentialsProvider({
          url: config.credentials.url,
          roleAlias: config.credentials.role_alias,
          thingName,
          tls: loadTlsMaterial(config.credentials.tls),
          ...(deps.proxy ? { proxy: deps.proxy } : {}),
          refreshBeforeSeconds: config.credentials.refresh_before_seconds,
          timeoutMs: config.credentials.timeout_seconds * 1000,
          log: log.child({ module: 'iot-credentials' }),
        });

  const outbox =
    deps.outbox ??
    createOutbox({ db: deps.db, log: log.child({ module: 'outbox' }), maxMessages: config.outbox_max_messages });
  const inbox = createInbox({ db: deps.db, log: log.child({ module: 'inbox' }), fortId: deps.fortId, outbox });
  inbox.registerHandler('ping', pingHandler(deps.fortId));
  for (const [type, handler] of deps.handlers ?? []) inbox.registerHandler(type, handler);

  const link = createMqttLink({
    endpoint: config.endpoint,
    region: config.region,
    fortId: deps.fortId,
    thingName,
    ...(config.ca ? { ca: readFileSync(config.ca) } : {}),
    keepaliveSeconds: config.keepalive_seconds,
    protocolVersion: config.protocol_version,
    backoff: { baseMs: config.reconnect_base_ms, capMs: config.reconnect_cap_ms },
    credentials,
    ...(deps.proxy ? { proxy: deps.proxy } : {}),
    // Throws (→ no PUBACK, redelivery) only when the store itself failed.
    onMessages: (messages) => void inbox.receiveMany(messages),
    log: log.child({ module: 'iot-link' }),
  });
  const publisher = createOutboxPublisher({
    outbox,
    publish: (topic, payload) => link.publish(topic, payload),
    ratePerSecond: config.publish_rate_per_second,
    log: log.child({ module: 'outbox-publisher' }),
  });
  outbox.onEnqueue(() => publisher.kick());

  const healthState = () => {
    deps.clock.reportSkew(credentials.clockSkewMs());
    if (link.state === 'connected') deps.health.set('iot-link', 'ready', 'connected');
    else deps.health.set('iot-link', 'degraded', link.stats().lastError ?? link.state);
  };
  const shadow =
    deps.reportedState &&
    createShadowReporter({
      thingName,
      collect: deps.reportedState,
      publish: (topic, payload) => link.publish(topic, payload),
      log: log.child({ module: 'shadow' }),
    });
  link.events.on('connected', () => {
    publisher.start();
    healthState();
    shadow?.linkUp();
  });
  link.events.on('disconnected', () => {
    void publisher.stop();
    healthState();
  });
  link.events.on('state', healthState);
  deps.health.set('iot-link', 'degraded', 'connecting');
  deps.health.setInfo('iot-link', () => ({
    ...link.stats(),
    outbox: outbox.stats(),
    inbox: inbox.stats(),
    deadLetters: inbox.deadLetterCount(),
  }));
  link.start();
  shadow?.start();
  // Event ids are remembered only as long as a redelivery can come (checked hourly): the
  // dedup table must not grow for the life of the fort.
  const cutoff = createDedupCutoff({ windowMs: config.dedup_hours * 3_600_000 });
  const pruneDedup = () => {
    const removed = inbox.pruneBefore(cutoff.next());
    if (removed) log.debug({ removed }, 'forgot event ids past the redelivery window');
  };
  pruneDedup();
  const pruneTimer = setInterval(pruneDedup, 3_600_000).unref();

  return {
    inbox,
    outbox,
    link,
    async stop() {
      clearInterval(pruneTimer);
      shadow?.stop();
      // Link first: ending the connection fails any publish still awaiting its PUBACK,
      // which the publisher's stop waits for (the rows stay in the outbox for next time).
      await link.stop();
      await publisher.stop();
    },
  };
}
