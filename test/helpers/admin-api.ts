import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyRequest } from 'fastify';
import { generatePki } from '../../lib/pki/generate.js';
import type { PkiPaths } from '../../lib/pki/layout.js';
import { loadTlsMaterial } from '../../lib/tls.js';
import { buildAdminApi } from '../../agent/admin/server.js';
import { createRequestedLevel } from '../../agent/admin/log-level-routes.js';
import { createLogLevelControl } from '../../lib/log-level.js';
import { tlsPeerOf, type PeerSource } from '../../agent/admin/peer.js';
import type { AdminRole } from '../../agent/admin/roles.js';
import { createAuditReader } from '../../agent/audit/reader.js';
import { certificateInventory } from '../../agent/cert-inventory.js';
import type { AgentConfig } from '../../agent/config.js';
import { createDeadLetterReader } from '../../agent/events/dead-letters.js';
import { createHealthRegistry } from '../../agent/health.js';
import { createAgentMetrics } from '../../agent/metrics.js';
import { createPairingOperations } from '../../agent/pairing/operations.js';
import { reloadsSection } from '../../agent/reloads/config.js';
import { adminReloadOperations, startReloadService } from '../../agent/reloads/service.js';
import { createCertReloader, tlsServerOf } from '../../lib/tls-reload.js';
import { createUpdateStateHolder } from '../../agent/update-state.js';
import { tempDir } from './fort.js';
import { collectingLogger, tempStores } from './inject.js';

const BOTH: AdminRole[] = ['operator', 'deployment-manager'];
const OP: AdminRole[] = ['operator'];
const DM: AdminRole[] = ['deployment-manager'];
/** Who may call what (README: Admin API). */
export const ADMIN_POLICY: Readonly<Record<string, AdminRole[]>> = {
  'GET /admin/v1/health': BOTH,
  'GET /admin/v1/version': BOTH,
  'POST /admin/v1/drain': BOTH,
  'POST /admin/v1/update-identity': DM,
  'PUT /admin/v1/update-state': DM,
  'GET /admin/v1/update-state': OP,
  'GET /admin/v1/metrics': OP,
  'GET /admin/v1/certs': OP,
  'GET /admin/v1/events/dead': OP,
  'GET /admin/v1/audit': OP,
  'POST /admin/v1/apps': OP,
  'GET /admin/v1/apps': OP,
  'GET /admin/v1/reloads': OP,
  'POST /admin/v1/reloads': OP,
  'POST /admin/v1/reloads/:id/cancel': OP,
  'POST /admin/v1/pair': OP,
  'POST /admin/v1/unpair': OP,
  'POST /admin/v1/rotate-keys': OP,
  'POST /admin/v1/reload-certs': OP,
  'PUT /admin/v1/log-level': OP,
  'GET /admin/v1/log-level': OP,
};

/** The trust zone alone (root CA, agent, deployment manager, fortctl), in a temp dir. */
export const trustZonePki = (): Promise<PkiPaths> => generatePki({ out: tempDir('pki'), zones: ['trustZone'] });

/** The header the test's peer source reads: the common name the caller's certificate would carry. */
export const TEST_PEER_HEADER = 'x-test-peer';

/**
 * inject() has no TLS socket: the caller's certificate name comes from a header instead. Without
 * that header the production reader looks at the (mock) socket, finds no certificate and refuses.
 */
export const headerPeerOf: PeerSource = (req: FastifyRequest) => {
  const name = req.headers[TEST_PEER_HEADER];
  return typeof name === 'string' ? { ok: true, peer: { name, fingerprint256: `test:${name}` } } : tlsPeerOf(req);
};

/**
 * The admin API as the agent builds it, on real components: SQLite store and audit store in a
 * temp dir, the reload service (never started: requests are queued, never run) with its app
 * registry, pairing operations of an unpaired fort (no cloud: nothing leaves the process), the
 * certificate reloader on the API's own server, health, metrics and update state. Drains and
 * restarts are only recorded.
 */
export async function adminApiRig(pki: PkiPaths, opts: { allowedClients?: string[]; peerOf?: PeerSource } = {}) {
  const { log, lines } = collectingLogger('admin-api');
  const stores = tempStores('admin-api', log);
  const sourcesDir = join(stores.dir, 'sources');
  mkdirSync(sourcesDir);
  const tz = pki.trustZone;
  const tlsPaths = { ca: tz.ca, cert: tz.agentCert, key: tz.agentKey };
  const health = createHealthRegistry();
  health.set('store', 'ready');
  const startedAt = new Date();
  const drained: string[] = [];
  const restarts: string[] = [];
  const updateState = createUpdateStateHolder();
  const reloads = startReloadService({
    db: stores.db,
    config: reloadsSection().parse({ data_dirs: [sourcesDir] }),
    appsDir: stores.appsDir,
    fortId: 'fort-test-1',
    log,
  });
  // certificateInventory reads only the files these sections name.
  const certConfig = {
    admin: { tls: tlsPaths },
    api: { tls: { cert: tz.agentCert, key: tz.agentKey } },
    pairing: {},
  } as unknown as AgentConfig;
  const dmLevel = createRequestedLevel();
  const app = await buildAdminApi({
    tls: loadTlsMaterial(tlsPaths),
    allowedClients: opts.allowedClients ?? ['fortctl', 'deployment-manager'],
    ...(opts.peerOf ? { peerOf: opts.peerOf } : {}),
    health,
    info: () => ({ version: '1.2.3', fortId: 'fort-test-1', schemaVersion: 1, startedAt }),
    drain: (by) => void drained.push(by),
    audit: createAuditReader(stores.auditDb),
    deadLetters: createDeadLetterReader(stores.db),
    certificates: () => certificateInventory(certConfig),
    // The reloader swaps the certificates of this very server, made below.
    reloadCerts: (by) => certs.reload(by),
    metrics: createAgentMetrics(),
    updateState,
    logLevels: { agent: createLogLevelControl({ logger: log, configured: 'info' }), deploymentManager: dmLevel },
    deploymentManagerLevel: () => dmLevel.asked(),
    reloads: adminReloadOperations(reloads),
    pairing: createPairingOperations({
      config: { identity: undefined, pairing: { dir: join(stores.dir, 'pairing'), timeout_seconds: 5 } },
      cloud: undefined,
      proxy: undefined,
      log,
      shutdown: (reason) => void restarts.push(reason),
    }),
    log,
  });
  const certs = createCertReloader(
    [{ role: 'admin API (trust zone)', paths: tlsPaths, server: tlsServerOf(app) }],
    log,
  );
  await app.ready();
  return {
    app,
    lines,
    sourcesDir,
    drained,
    restarts,
    updateState,
    async close() {
      await app.close();
      await reloads.stop();
      stores.close();
    },
  };
}
export type AdminApiRig = Awaited<ReturnType<typeof adminApiRig>>;
