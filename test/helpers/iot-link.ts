import { pino } from 'pino';
import { createMqttLink, type LinkOptions, type MqttLink } from '../../agent/iot/link.js';
import { credentialsProvider, type CredentialSource } from '../../agent/iot/credentials.js';
import { loadTlsMaterial } from '../../lib/tls.js';
import type { PkiPaths } from '../../lib/pki/layout.js';
import type { ProxySettings } from '../../lib/proxy.js';
import type { TestDevCloud } from './dev-cloud.js';

/** The PKI's fort id: the device certificate's CN, which the credentials provider checks. */
export const TEST_FORT = 'fort-dev-1';
const silent = pino({ level: 'silent' });

/** The IoT credentials provider client with the test PKI's device certificate. */
export function testProviderCredentials(dev: TestDevCloud, pki: PkiPaths, proxy?: ProxySettings): CredentialSource {
  return credentialsProvider({
    url: dev.providerUrl,
    roleAlias: 'fort-iot-role',
    thingName: TEST_FORT,
    tls: loadTlsMaterial({ ca: pki.cloudServer.ca, cert: pki.cloudDevice.deviceCert, key: pki.cloudDevice.deviceKey }),
    ...(proxy ? { proxy } : {}),
    refreshBeforeSeconds: 300,
    timeoutMs: 5000,
    log: silent,
  });
}

/** An MQTT link to the dev bridge with test-friendly backoff; options override the defaults. */
export function testLink(
  dev: TestDevCloud,
  credentials: CredentialSource,
  overrides: Partial<LinkOptions> = {},
): MqttLink {
  return createMqttLink({
    endpoint: dev.endpoint,
    region: 'eu-west-1',
    fortId: TEST_FORT,
    thingName: TEST_FORT,
    ca: dev.ca,
    keepaliveSeconds: 30,
    protocolVersion: 4,
    backoff: { baseMs: 200, capMs: 2000 },
    credentials,
    onMessages: () => {},
    log: silent,
    ...overrides,
  });
}

/** Adapts a per-message callback to the link's batch callback. */
export const eachMessage =
  (onMessage: (topic: string, payload: Buffer) => void): LinkOptions['onMessages'] =>
  (messages) => {
    for (const m of messages) onMessage(m.topic, m.payload);
  };

export const linkConnected = (l: MqttLink) =>
  new Promise<void>((resolve) => (l.state === 'connected' ? resolve() : l.events.once('connected', resolve)));
