import { relative } from 'node:path';
import { stringify } from 'smol-toml';
import type { PkiPaths } from '../lib/pki/layout.js';
import { reservePorts } from './port-reservation.js';

/** Config files of one fort installation on loopback, as the dev stack and tests write them. */
export interface StackLayout {
  /** Directory the config files are written to; paths inside them are relative to it. */
  dir: string;
  fortId: string;
  pki: PkiPaths;
  ports: {
    clientApi: number;
    admin: number;
    cloud: number;
    iot: number;
    credentials: number;
    updates: number;
    engine: number;
  };
  dataDir: string;
  logLevel?: string;
  /** When set, the client API verifies user tokens of this tenant and asks the dev cloud API. */
  cloudAuth?: { tenant: string };
  /** When set, the agent links to the dev IoT bridge and the dev cloud runs it. */
  iot?: { region: string; roleAlias: string; staticCredentialsFile: string };
  /** Directory app sources (CSV, SQLite files) may be loaded from (`reloads.data_dirs`). */
  sourcesDir?: string;
  /** Reload schedules of this fort's apps in the dev cloud (needs `iot`). */
  schedules?: { app: string; cron: string }[];
  /**
   * When set, the dev cloud runs the update server (`[mender]`) and the deployment manager
   * updates the agent from it (`[updates]`): releases under `installRoot`, artifacts for
   * `deviceType` signed by the key whose public PEM is `artifactKey`.
   */
  updates?: { installRoot: string; deviceType: string; artifactKey: string };
  /**
   * When set, the fort's cloud identity comes from pairing (fortctl pair), not from config: the
   * agent's file has no [fort] id, [iot], [cloud] or [api.auth], the deployment manager uses
   * [updates.paired], and the dev cloud registers no fort by hand.
   */
  paired?: boolean;
  /** When set, fort-engine loads and serves app data (the agent's [engine]; engineToml writes its config). */
  engine?: { dataDir: string; cacheMib?: number };
}

const rel = (l: StackLayout, p: string) => relative(l.dir, p) || '.';

export function agentToml(l: StackLayout): string {
  const paired = l.paired === true;
  return `# fort-agent configuration (see README: Configuration)\n${stringify({
    ...(paired ? {} : { fort: { id: l.fortId } }),
    log: { level: l.logLevel ?? 'info' },
    store: { path: rel(l, `${l.dataDir}/agent/agent.db`) },
    admin: {
      host: '127.0.0.1',
      port: l.ports.admin,
      allowed_clients: ['fortctl', 'deployment-manager'],
      tls: {
        ca: rel(l, l.pki.trustZone.ca),
        cert: rel(l, l.pki.trustZone.agentCert),
        key: rel(l, l.pki.trustZone.agentKey),
      },
    },
    api: {
      host: '127.0.0.1',
      port: l.ports.clientApi,
      tls: { cert: rel(l, l.pki.clientZone.clientApiCert), key: rel(l, l.pki.clientZone.clientApiKey) },
      ...(l.cloudAuth
        ? {
            cors_origins: [`https://127.0.0.1:${l.ports.cloud}`, `https://localhost:${l.ports.cloud}`],
            viewer_login_url: `https://127.0.0.1:${l.ports.cloud}/dev/v1/login`,
            ...(paired ? {} : { auth: { issuer: `https://127.0.0.1:${l.ports.cloud}`, tenant: l.cloudAuth.tenant } }),
          }
        : {}),
    },
    ...(l.cloudAuth && !paired
      ? {
          cloud: {
            url: `https://127.0.0.1:${l.ports.cloud}`,
            ca: rel(l, l.pki.cloudServer.ca),
            private_key: rel(l, l.pki.jwt.privateKey),
          },
        }
      : {}),
    // The CA the pairing endpoint (the dev cloud) must chain to; the rest comes with pairing.
    ...(paired ? { pairing: { ca: rel(l, l.pki.cloudServer.ca) } } : {}),
    ...(l.iot && !paired
      ? {
          iot: {
            endpoint: `127.0.0.1:${l.ports.iot}`,
            region: l.iot.region,
            ca: rel(l, l.pki.cloudServer.ca),
            reconnect_base_ms: 500,
            credentials: {
              source: 'provider',
              url: `https://127.0.0.1:${l.ports.credentials}`,
              role_alias: l.iot.roleAlias,
              tls: {
                ca: rel(l, l.pki.cloudServer.ca),
                cert: rel(l, l.pki.cloudDevice.deviceCert),
                key: rel(l, l.pki.cloudDevice.deviceKey),
              },
            },
          },
        }
      : {}),
    ...(l.sourcesDir ? { reloads: { data_dirs: [rel(l, l.sourcesDir)] } } : {}),
    ...(l.engine ? { engine: { url: `https://127.0.0.1:${l.ports.engine}` } } : {}),
  })}\n`;
}

/** fort-engine's config: trust-zone mTLS on loopback, the agent its only client, sources from the stack's. */
export function engineToml(l: StackLayout & { engine: { dataDir: string; cacheMib?: number } }): string {
  return `# fort-engine configuration (see README: Configuration)\n${stringify({
    log: { level: l.logLevel ?? 'info' },
    server: {
      host: '127.0.0.1',
      port: l.ports.engine,
      tls: {
        ca: rel(l, l.pki.trustZone.ca),
        cert: rel(l, l.pki.trustZone.engineCert),
        key: rel(l, l.pki.trustZone.engineKey),
      },
    },
    data: { dir: rel(l, l.engine.dataDir), source_dirs: l.sourcesDir ? [rel(l, l.sourcesDir)] : [] },
    queries: {
      memory_limit: '512MB',
      threads: 2,
      ...(l.engine.cacheMib === undefined ? {} : { cache_mib: l.engine.cacheMib }),
    },
  })}\n`;
}

/** [updates.server] of a fort configured by hand: the dev cloud's update server, the PKI's device certificate. */
function devUpdateServer(l: StackLayout) {
  return {
    url: `https://127.0.0.1:${l.ports.updates}`,
    // The dev update server is the dev cloud: its server CA; the device certificate for mutual TLS.
    tls: {
      ca: rel(l, l.pki.cloudServer.ca),
      cert: rel(l, l.pki.cloudDevice.deviceCert),
      key: rel(l, l.pki.cloudDevice.deviceKey),
    },
    auth_key: rel(l, `${l.dataDir}/deployment-manager/mender-auth.pem`),
    id_data: { fort_id: l.fortId },
    poll_seconds: 10,
    inventory_seconds: 60,
    retry_seconds: 10,
  };
}

export function deploymentManagerToml(l: StackLayout, healthIntervalSeconds = 30): string {
  return `# fort-deployment-manager configuration (see README: Configuration)\n${stringify({
    log: { level: l.logLevel ?? 'info' },
    state: { path: rel(l, `${l.dataDir}/deployment-manager/state.json`) },
    agent: {
      admin_url: `https://127.0.0.1:${l.ports.admin}`,
      health_interval_seconds: healthIntervalSeconds,
      tls: {
        ca: rel(l, l.pki.trustZone.ca),
        cert: rel(l, l.pki.trustZone.deploymentManagerCert),
        key: rel(l, l.pki.trustZone.deploymentManagerKey),
      },
    },
    ...(l.updates
      ? {
          updates: {
            install_root: rel(l, l.updates.installRoot),
            staging_dir: rel(l, `${l.dataDir}/deployment-manager/staging`),
            device_type: l.updates.deviceType,
            artifact_keys: [rel(l, l.updates.artifactKey)],
            // Minutes/hours in production; seconds here so a deployment is picked up while one watches.
            ...(l.paired
              ? { paired: { poll_seconds: 10, inventory_seconds: 60, retry_seconds: 5 } }
              : { server: devUpdateServer(l) }),
          },
        }
      : {}),
  })}\n`;
}

export function fortctlToml(l: StackLayout): string {
  return `# fortctl configuration\n${stringify({
    admin: {
      url: `https://127.0.0.1:${l.ports.admin}`,
      tls: {
        ca: rel(l, l.pki.trustZone.ca),
        cert: rel(l, l.pki.trustZone.fortctlCert),
        key: rel(l, l.pki.trustZone.fortctlKey),
      },
    },
  })}\n`;
}

/** The dev policy file's name, next to dev-cloud.toml. */
export const DEV_POLICY_FILE = 'dev-policy.json';

export function devCloudToml(l: StackLayout): string {
  return `# dev cloud (local stand-in for the cloud endpoints)\n${stringify({
    log: { level: l.logLevel ?? 'info' },
    server: {
      host: '127.0.0.1',
      port: l.ports.cloud,
      tls: { cert: rel(l, l.pki.cloudServer.devCloudCert), key: rel(l, l.pki.cloudServer.devCloudKey) },
    },
    ...(l.iot
      ? {
          iot: {
            port: l.ports.iot,
            region: l.iot.region,
            static_credentials_file: rel(l, l.iot.staticCredentialsFile),
          },
          credentials_provider: {
            port: l.ports.credentials,
            role_alias: l.iot.roleAlias,
            device_ca: rel(l, l.pki.cloudDevice.ca),
          },
          ...(l.schedules?.length
            ? { scheduler: { schedules: l.schedules.map((x) => ({ fort: l.fortId, app: x.app, cron: x.cron })) } }
            : {}),
        }
      : {}),
    ...(l.updates
      ? {
          mender: {
            port: l.ports.updates,
            device_ca: rel(l, l.pki.cloudDevice.ca),
            artifacts_dir: rel(l, `${l.dataDir}/dev-cloud/mender-artifacts`),
          },
        }
      : {}),
    cloud_api: {
      policy: DEV_POLICY_FILE,
      // Both names of the client API certificate, so the viewer's login redirect works from either.
      fort_origins: [`https://127.0.0.1:${l.ports.clientApi}`, `https://localhost:${l.ports.clientApi}`],
      // A paired fort registers its own key; by hand only when the fort is configured by hand.
      clients: l.paired ? [] : [{ id: l.fortId, public_key: rel(l, l.pki.jwt.publicKey) }],
    },
    // `npm run dev-cloud -- pairing-code --tenant t1` issues codes for new forts.
    pairing: {
      state_dir: rel(l, `${l.dataDir}/dev-cloud/pairing`),
      device_ca: rel(l, l.pki.cloudDevice.ca),
      device_ca_key: rel(l, l.pki.cloudDevice.caKey),
      server_ca: rel(l, l.pki.cloudServer.ca),
    },
  })}\n`;
}

/**
 * A sample policy (format: dev-cloud/CLOUD-API.md): in tenant t1 alice (analysts) may list and
 * read the sales app, carol (admins) may also reload and sees the hr app, bob sees nothing.
 * Tenant t2 does not list the fort, so every answer about it is a deny.
 */
export function devPolicyJson(fortId: string): string {
  const policy = {
    decision_ttl_seconds: 60,
    tenants: {
      t1: {
        forts: [fortId],
        users: { alice: { groups: ['analysts'] }, bob: { groups: [] }, carol: { groups: ['admins'] } },
        spaces: {
          sales: { analysts: ['app.list', 'app.read'], admins: ['app.list', 'app.read', 'app.reload'] },
          hr: { admins: ['app.list', 'app.read', 'app.reload'] },
        },
        apps: { 'sales-2026': { space: 'sales' }, 'hr-2026': { space: 'hr' }, 'demo-sales': { space: 'sales' } },
      },
      t2: {
        forts: ['fort-elsewhere'],
        users: { alice: { groups: ['analysts'] } },
        spaces: { sales: { analysts: ['app.list', 'app.read'] } },
        apps: { 'sales-2026': { space: 'sales' } },
      },
    },
  };
  return `${JSON.stringify(policy, null, 2)}\n`;
}

/** The ports of one installation, reserved (scripts/port-reservation.ts) until `release()`. */
export function reserveStackPorts(): Promise<{ ports: StackLayout['ports']; release: () => void }> {
  return reservePorts(['clientApi', 'admin', 'cloud', 'iot', 'credentials', 'updates', 'engine'] as const);
}
