import { readFileSync } from 'node:fs';
import type { Logger } from '../lib/logger.js';
import { loadTlsMaterial } from '../lib/tls.js';
import { assertPrivateFileMode } from '../lib/files.js';
import { cloudApiIssuer, type DevCloudConfig } from './config.js';
import { createDevCloudServer } from './server.js';
import { startIotBridge, type IotBridge } from './iot/bridge.js';
import { createCredentialStore, type CredentialStore } from './iot/credential-store.js';
import { startCredentialsProvider } from './iot/credentials-provider.js';
import { registerDevIotRoutes } from './iot/dev-routes.js';
import { registerCloudApi, type CloudApi } from './cloud-api/index.js';
import { loadClients } from './cloud-api/clients.js';
import { EMPTY_POLICY, loadPolicyFile } from './cloud-api/policy.js';
import { startReloadScheduler, type ReloadScheduler } from './scheduler/scheduler.js';
import { createReloadStatusLog, type ReloadStatusLog } from './scheduler/status-log.js';
import { registerReloadRoutes } from './scheduler/dev-routes.js';
import { startMenderServer, type MenderServer } from './mender/server.js';
import { registerMenderDevRoutes } from './mender/dev-routes.js';
import { startPairing, type Pairing } from './pairing/service.js';
import { createFortRegistry } from './pairing/registry.js';
import { join } from 'node:path';

export interface DevCloud {
  bridge?: IotBridge;
  credentialStore: CredentialStore;
  /** Present when `[cloud_api]` is configured. */
  cloudApi?: CloudApi;
  /** Present with the bridge: `[scheduler]` schedules (none without the section), and `trigger`. */
  scheduler?: ReloadScheduler;
  /** Present with the bridge: the `reload.*` status events forts published. */
  reloadStatus?: ReloadStatusLog;
  /** Present when `[mender]` is configured: the update server (operator side and test hooks). */
  mender?: MenderServer;
  /** Present when `[pairing]` is configured: codes and paired forts. */
  pairing?: Pairing;
  close(): Promise<void>;
}

/** Starts every configured dev cloud service; tests use this in-process to inject faults. */
export async function startDevCloud(config: DevCloudConfig, log: Logger): Promise<DevCloud> {
  const tls = loadTlsMaterial(config.server.tls);
  const closers: (() => Promise<unknown>)[] = [];
  const services: string[] = ['cloud-api'];
  let staticKey: { accessKeyId: string; secretAccessKey: string } | undefined;
  if (config.iot?.static_credentials_file) {
    assertPrivateFileMode(config.iot.static_credentials_file);
    staticKey = JSON.parse(readFileSync(config.iot.static_credentials_file, 'utf8')) as typeof staticKey;
  }
  // The cloud's clock, optionally off (tests of fort clock-skew handling).
  const now = () => new Date(Date.now() + config.testing.clock_offset_seconds * 1000);
  const credentialStore = createCredentialStore({ now, ...(staticKey ? { staticKey } : {}) });
  // Paired forts: a revoked one is refused by the token endpoint, the credentials provider and the update server.
  const registry = config.pairing
    ? createFortRegistry({ file: join(config.pairing.state_dir, 'forts.json'), now })
    : undefined;
  const isRevoked = registry ? (serial: string) => registry.isRevokedSerial(serial) : undefined;
  try {
    let bridge: IotBridge | undefined;
    if (config.iot) {
      bridge = await startIotBridge({
        host: config.server.host,
        port: config.iot.port,
        tls,
        region: config.iot.region,
        store: credentialStore,
        maxConnectionSeconds: config.iot.max_connection_seconds,
        log: log.child({ module: 'iot-bridge' }),
        now,
      });
      closers.push(() => bridge!.close());
      services.push('iot-bridge');
    }
    if (config.credentials_provider) {
      const cp = config.credentials_provider;
      const provider = await startCredentialsProvider({
        host: config.server.host,
        port: cp.port,
        tls: { ...tls, ca: readFileSync(cp.device_ca) },
        roleAlias: cp.role_alias,
        lifetimeSeconds: cp.lifetime_seconds,
        store: credentialStore,
        ...(isRevoked ? { isRevoked } : {}),
        log: log.child({ module: 'credentials-provider' }),
        now,
      });
      closers.push(() => provider.close());
      services.push('credentials-provider');
    }
    let scheduler: ReloadScheduler | undefined;
    let reloadStatus: ReloadStatusLog | undefined;
    if (bridge) {
      // Status is recorded even without schedules (reloads a user asked the fort for directly).
      const schedLog = log.child({ module: 'reload-scheduler' });
      reloadStatus = createReloadStatusLog({ bridge, log: schedLog });
      closers.push(async () => reloadStatus!.close());
      scheduler = startReloadScheduler({ schedules: config.scheduler?.schedules ?? [], bridge, now, log: schedLog });
      closers.push(async () => scheduler!.stop());
      if (config.scheduler) services.push('reload-scheduler');
    }
    let mender: MenderServer | undefined;
    if (config.mender) {
      const m = config.mender;
      mender = await startMenderServer({
        host: config.server.host,
        port: m.port,
        tls: { ...tls, ca: readFileSync(m.device_ca) },
        artifactsDir: m.artifacts_dir,
        ...(m.public_url ? { publicUrl: m.public_url } : {}),
        downloadLinkSeconds: m.download_link_seconds,
        tokenSeconds: m.token_seconds,
        retry: { pendingSeconds: m.retry.pending_seconds, unavailableSeconds: m.retry.unavailable_seconds },
        ...(isRevoked ? { isRevoked } : {}),
        log: log.child({ module: 'mender' }),
        now,
      });
      closers.push(() => mender!.close());
      services.push('mender');
    }
    const api = await createDevCloudServer({ tls, log: log.child({ module: 'cloud-api' }), services: () => services });
    if (bridge) registerDevIotRoutes(api, bridge);
    if (scheduler && reloadStatus) await registerReloadRoutes(api, { scheduler, statusLog: reloadStatus });
    if (mender) await registerMenderDevRoutes(api, mender);
    let cloudApi: CloudApi | undefined;
    let pairing: Pairing | undefined;
    /** Everything a revoked fort held stops working at once. */
    const onRevokeOf = (fortId: string) => {
      cloudApi?.revokeClient(fortId);
      credentialStore.revokeThing(fortId);
      bridge?.disconnect(fortId);
    };
    if (config.cloud_api) {
      const c = config.cloud_api;
      const configured = loadClients(c.clients);
      if (registry) {
        pairing = await startPairing(api, config, {
          registry,
          onRevoke: onRevokeOf,
          now,
          log: log.child({ module: 'pairing' }),
        });
      }
      const unpair = registry
        ? (fortId: string) => {
            if (!registry.revoke(fortId)) return false;
            onRevokeOf(fortId);
            return true;
          }
        : undefined;
      const paired = pairing?.registry;
      cloudApi = await registerCloudApi(api, {
        issuer: cloudApiIssuer(config),
        ...(paired ? { pairedForts: (tenant: string) => paired.fortsOf(tenant) } : {}),
        accessTokenSeconds: c.access_token_seconds,
        userTokenSeconds: c.user_token_seconds,
        policy: c.policy ? loadPolicyFile(c.policy) : EMPTY_POLICY,
        fortOrigins: c.fort_origins,
        clients: { get: (id) => configured.get(id) ?? paired?.client(id) },
        ...(unpair ? { unpair } : {}),
        ...(pairing ? { rotate: pairing.rotate, deviceCertificate: pairing.deviceCertificate } : {}),
        now,
      });
    }
    await api.listen({ host: config.server.host, port: config.server.port });
    closers.push(() => api.close());
    return {
      ...(bridge ? { bridge } : {}),
      ...(cloudApi ? { cloudApi } : {}),
      ...(scheduler ? { scheduler } : {}),
      ...(reloadStatus ? { reloadStatus } : {}),
      ...(mender ? { mender } : {}),
      ...(pairing ? { pairing } : {}),
      credentialStore,
      async close() {
        for (const c of closers.reverse()) await c();
      },
    };
  } catch (err) {
    for (const c of closers.reverse()) await c().catch(() => {});
    throw err;
  }
}
