import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import mqtt, { type MqttClient } from 'mqtt';
import WebSocket from 'ws';
import { presignMqttUrl } from '../../agent/iot/presign.js';
import { writeFileAtomic, writeSecretFile } from '../../lib/files.js';
import type { PkiPaths } from '../../lib/pki/layout.js';
import { devCloudConfigSchema, type DevCloudConfig } from '../../dev-cloud/config.js';
import { startDevCloud, type DevCloud } from '../../dev-cloud/app.js';
import type { PolicyInput } from '../../dev-cloud/cloud-api/policy.js';
import { devPolicyJson, type StackLayout } from '../../scripts/dev-config.js';
import { reservePorts } from '../../scripts/port-reservation.js';
import { tempDir } from './fort.js';
import { httpsCall as cloudRequest } from './https.js';
export { httpsCall as cloudRequest, type HttpsCallResponse as CloudResponse } from './https.js';

export const DEV_STATIC_KEY = {
  accessKeyId: 'AKIADEVFORTSTATIC001',
  secretAccessKey: 'dev-secret-key-for-tests-only-0000000000',
};

/** The fort id the test dev cloud registers at its token endpoint by default (key: `pki.jwt`). */
export const TEST_CLIENT_ID = 'fort-dev-1';

export interface TestDevCloudOverrides {
  maxConnectionSeconds?: number;
  lifetimeSeconds?: number;
  clockOffsetSeconds?: number;
  ports?: Pick<StackLayout['ports'], 'cloud' | 'iot' | 'credentials'>;
  /** The registered fort id (key: `pki.jwt.publicKey`); default `fort-dev-1`. */
  clientId?: string;
  /** Policy file content; default `devPolicyJson(clientId)`. */
  policy?: PolicyInput;
  /** Origins the redirect login may send tokens to; default none. */
  fortOrigins?: string[];
  accessTokenSeconds?: number;
  /** `[[scheduler.schedules]]`; absent = no `[scheduler]` section (the scheduler still exists, with no jobs). */
  schedules?: { id?: string; fort: string; app: string; cron: string }[];
  /** `[mender]` (always on): its port (default: one reserved like the others) and link lifetime (default 300 s). */
  mender?: { port?: number; downloadLinkSeconds?: number };
  /** `[pairing]` (always on): attempts per source per minute (default 10). */
  pairingAttemptsPerMinute?: number;
  /** `[pairing]`: how long rotated-away keys stay valid (default 3600 s). */
  keyOverlapSeconds?: number;
  /** Device certificates that live this long (dev cloud's pairing.device_cert_seconds). */
  deviceCertSeconds?: number;
  /** `[pairing] artifact_key`: the artifact signing key the cloud sends paired forts (default none). */
  pairingArtifactKey?: string;
}

/** The dev cloud in-process (real sockets and TLS), so tests can drop links and restart it. */
export async function testDevCloud(pki: PkiPaths, overrides: TestDevCloudOverrides = {}) {
  const dir = tempDir('cloud');
  const staticFile = join(dir, 'iot-static.json');
  writeSecretFile(staticFile, JSON.stringify(DEV_STATIC_KEY));
  const clientId = overrides.clientId ?? TEST_CLIENT_ID;
  const policyFile = join(dir, 'policy.json');
  writeFileAtomic(policyFile, overrides.policy ? JSON.stringify(overrides.policy) : devPolicyJson(clientId), 0o644);
  // An installation's ports (so its agent.toml points here; it holds them), or ports reserved
  // here until stop() (scripts/port-reservation.ts), so a restart() binds them again safely.
  const own = await reservePorts([
    ...(overrides.ports ? [] : (['cloud', 'iot', 'credentials'] as const)),
    ...(overrides.mender?.port ? [] : (['mender'] as const)),
  ]);
  const ports = overrides.ports ?? { cloud: own.ports.cloud, iot: own.ports.iot, credentials: own.ports.credentials };
  const menderPort = overrides.mender?.port ?? own.ports.mender;
  const config: DevCloudConfig = devCloudConfigSchema.parse({
    log: { level: 'warn' },
    server: {
      host: '127.0.0.1',
      port: ports.cloud,
      tls: { cert: pki.cloudServer.devCloudCert, key: pki.cloudServer.devCloudKey },
    },
    iot: {
      port: ports.iot,
      region: 'eu-west-1',
      max_connection_seconds: overrides.maxConnectionSeconds ?? 86_400,
      static_credentials_file: staticFile,
    },
    testing: { clock_offset_seconds: overrides.clockOffsetSeconds ?? 0 },
    credentials_provider: {
      port: ports.credentials,
      role_alias: 'fort-iot-role',
      lifetime_seconds: overrides.lifetimeSeconds ?? 3600,
      device_ca: pki.cloudDevice.ca,
    },
    cloud_api: {
      policy: policyFile,
      fort_origins: overrides.fortOrigins ?? [],
      clients: [{ id: clientId, public_key: pki.jwt.publicKey }],
      ...(overrides.accessTokenSeconds ? { access_token_seconds: overrides.accessTokenSeconds } : {}),
    },
    ...(overrides.schedules ? { scheduler: { schedules: overrides.schedules } } : {}),
    mender: {
      port: menderPort,
      device_ca: pki.cloudDevice.ca,
      artifacts_dir: join(dir, 'mender-artifacts'),
      ...(overrides.mender?.downloadLinkSeconds ? { download_link_seconds: overrides.mender.downloadLinkSeconds } : {}),
    },
    pairing: {
      state_dir: join(dir, 'pairing'),
      device_ca: pki.cloudDevice.ca,
      device_ca_key: pki.cloudDevice.caKey,
      server_ca: pki.cloudServer.ca,
      ...(overrides.pairingAttemptsPerMinute ? { attempts_per_minute: overrides.pairingAttemptsPerMinute } : {}),
      ...(overrides.keyOverlapSeconds ? { key_overlap_seconds: overrides.keyOverlapSeconds } : {}),
      ...(overrides.deviceCertSeconds ? { device_cert_seconds: overrides.deviceCertSeconds } : {}),
      ...(overrides.pairingArtifactKey ? { artifact_key: overrides.pairingArtifactKey } : {}),
    },
  });
  const log = pino({ level: 'warn' });
  let cloud: DevCloud;
  try {
    cloud = await startDevCloud(config, log);
  } catch (err) {
    own.release();
    throw err;
  }
  const apiUrl = `https://127.0.0.1:${ports.cloud}`;
  const ca = readFileSync(pki.cloudServer.ca);
  const issuer = cloud.cloudApi!.issuer;
  return {
    config,
    staticFile,
    policyFile,
    endpoint: `127.0.0.1:${ports.iot}`,
    providerUrl: `https://127.0.0.1:${ports.credentials}`,
    apiUrl,
    ca,
    issuer,
    tokenUrl: `${issuer}/oauth/token`,
    jwksUrl: `${issuer}/.well-known/jwks.json`,
    /** Cloud API test hooks; a restart gives a new one (new keys and tokens, policy from the file). */
    get cloudApi() {
      return cloud.cloudApi!;
    },
    /** A user token from `POST /dev/v1/login`. */
    /** For `fort`, or the tenant's only fort when not named. */
    async login(user: string, tenant: string, ttlSeconds?: number, fort?: string): Promise<string> {
      const res = await cloudRequest(apiUrl, ca, 'POST', '/dev/v1/login', {
        json: { user, tenant, ...(ttlSeconds ? { ttl_seconds: ttlSeconds } : {}), ...(fort ? { fort } : {}) },
      });
      if (res.status !== 200) throw new Error(`dev cloud login: HTTP ${res.status} ${res.body}`);
      return (res.json() as { token: string }).token;
    },
    get cloud() {
      return cloud;
    },
    get bridge() {
      return cloud.bridge!;
    },
    /** The update server (operator side, fault hooks); a restart keeps the artifacts (same directory), not devices or deployments. */
    get mender() {
      return cloud.mender!;
    },
    /** Pairing codes and paired forts; paired forts survive a restart (their file), codes do not. */
    get pairing() {
      return cloud.pairing!;
    },
    /** The reload scheduler (`trigger`, `fire`, `events`); a restart gives a new one. */
    get scheduler() {
      return cloud.scheduler!;
    },
    /** The `reload.*` status events forts published (`list`, `waitFor`); empty again after a restart. */
    get reloadStatus() {
      return cloud.reloadStatus!;
    },
    async restart() {
      await cloud.close();
      cloud = await startDevCloud(config, log);
    },
    async stop() {
      try {
        await cloud.close();
      } finally {
        own.release();
      }
    },
  };
}
export type TestDevCloud = Awaited<ReturnType<typeof testDevCloud>>;

/** A plain mqtt.js client on the dev bridge with the static dev key: baselines and intruders. */
export async function connectBareClient(
  dev: TestDevCloud,
  clientId: string,
  opts: { clean?: boolean } = {},
): Promise<MqttClient> {
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
