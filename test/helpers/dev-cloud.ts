import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import mqtt, { type MqttClient } from 'mqtt';
import WebSocket from 'ws';
import { presignMqttUrl } from '../../agent/iot/presign.js';
import { writeSecretFile } from '../../lib/files.js';
import type { PkiPaths } from '../../lib/pki/layout.js';
import { devCloudConfigSchema, type DevCloudConfig } from '../../dev-cloud/config.js';
import { startDevCloud, type DevCloud } from '../../dev-cloud/app.js';
import { freePort, type StackLayout } from '../../scripts/dev-config.js';
import { tempDir } from './fort.js';

export const DEV_STATIC_KEY = { accessKeyId: 'AKIADEVFORTSTATIC001', secretAccessKey: 'dev-secret-key-for-tests-only-0000000000' };

/** The dev cloud in-process (real sockets and TLS), so tests can drop links and restart it. */
export async function testDevCloud(pki: PkiPaths, overrides: { maxConnectionSeconds?: number; lifetimeSeconds?: number; clockOffsetSeconds?: number; ports?: Pick<StackLayout['ports'], 'cloud' | 'iot' | 'credentials'> } = {}) {
  const dir = tempDir('cloud');
  const staticFile = join(dir, 'iot-static.json');
  writeSecretFile(staticFile, JSON.stringify(DEV_STATIC_KEY));
  // An installation's ports (so its agent.toml points here), or fresh ones.
  const ports = overrides.ports ?? { cloud: await freePort(), iot: await freePort(), credentials: await freePort() };
  const config: DevCloudConfig = devCloudConfigSchema.parse({
    log: { level: 'warn' },
    server: { host: '127.0.0.1', port: ports.cloud, tls: { cert: pki.cloudServer.devCloudCert, key: pki.cloudServer.devCloudKey } },
    iot: { port: ports.iot, region: 'eu-west-1', max_connection_seconds: overrides.maxConnectionSeconds ?? 86_400, static_credentials_file: staticFile },
    testing: { clock_offset_seconds: overrides.clockOffsetSeconds ?? 0 },
    credentials_provider: { port: ports.credentials, role_alias: 'fort-iot-role', lifetime_seconds: overrides.lifetimeSeconds ?? 3600, device_ca: pki.cloudDevice.ca },
  });
  const log = pino({ level: 'warn' });
  let cloud: DevCloud = await startDevCloud(config, log);
  return {
    config,
    staticFile,
    endpoint: `127.0.0.1:${ports.iot}`,
    providerUrl: `https://127.0.0.1:${ports.credentials}`,
    apiUrl: `https://127.0.0.1:${ports.cloud}`,
    ca: readFileSync(pki.cloudServer.ca),
    get cloud() {
      return cloud;
    },
    get bridge() {
      return cloud.bridge!;
    },
    async restart() {
      await cloud.close();
      cloud = await startDevCloud(config, log);
    },
    async stop() {
      await cloud.close();
    },
  };
}
export type TestDevCloud = Awaited<ReturnType<typeof testDevCloud>>;

/** A plain mqtt.js client on the dev bridge with the static dev key: baselines and intruders. */
export async function connectBareClient(dev: TestDevCloud, clientId: string, opts: { clean?: boolean } = {}): Promise<MqttClient> {
  const url = await presignMqttUrl({ endpoint: dev.endpoint, region: 'eu-west-1', credentials: DEV_STATIC_KEY });
  const client = mqtt.connect(`wss://${dev.endpoint}/mqtt`, {
    clientId,
    clean: opts.clean ?? true,
    protocolVersion: 4,
    reconnectPeriod: 0,
    createWebsocket: (_u: string, protocols: string[]) => new WebSocket(url, protocols, { ca: dev.ca }),
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}
